"""The dashboard's HTML: the sign-in form and the page's shell (``dashboard.js`` fills in
the figures), with the security headers every page carries. The page shows only what the
JSON API publishes: controlled figures, their method and the release time."""

from __future__ import annotations

import html
from string import Template
from typing import Final

from fastapi.responses import HTMLResponse

CSP: Final = ("default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; "
              "frame-ancestors 'none'")
PAGE_HEADERS: Final = {"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                       "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff",
                       "X-Frame-Options": "DENY"}


DASHBOARD_BODY: Final = Template("""<a class="skip" href="#main">Skip to the figures</a>
<header class="masthead">
 <div class="brand">
  <h1>Peerlink operations dashboard</h1>
  <p class="subtitle">Routine enquiry, coverage and peer mentoring: de-identified,
   disclosure-controlled figures</p>
 </div>
 <div class="session">
  <span>Signed in for $org_name</span>
  <form method="post" action="/logout"><button type="submit" class="link-button">Sign out</button>
  </form>
 </div>
</header>
<main id="main">
<section class="status" aria-labelledby="release-heading">
 <h2 id="release-heading" class="visually-hidden">Release and filters</h2>
 <div class="release">
  <p>Latest release: <time id="released-at">not yet published</time>
   <span id="connection" class="badge badge-wait">connecting</span></p>
  <p id="announcer" class="announcer" role="status" aria-live="polite" aria-atomic="true"></p>
 </div>
 <form id="controls" class="controls">
  <div class="field"><label for="period">Period</label>
   <select id="period" name="period"><option value="last-12-months">Last 12 months</option>
   </select></div>
  <div class="field"><label for="group-by">Break down by</label>
   <select id="group-by" name="group_by">$groups</select></div>
 </form>
</section>
<div class="grid">
 <section class="panel" id="prevalence-trend" aria-labelledby="prevalence-trend-h">
  <h2 id="prevalence-trend-h">Prevalence among people screened, by month</h2>
  <div class="figure" data-figure="prevalence-trend"><p class="placeholder">Loading figures</p>
  </div>
 </section>
 <section class="panel" id="coverage-trend" aria-labelledby="coverage-trend-h">
  <h2 id="coverage-trend-h">Screening coverage, by month</h2>
  <div class="figure" data-figure="coverage-trend"><p class="placeholder">Loading figures</p>
  </div>
 </section>
 <section class="panel" id="prevalence-breakdown" aria-labelledby="prevalence-breakdown-h">
  <h2 id="prevalence-breakdown-h">Prevalence <span class="by-label">by organisation</span></h2>
  <div class="figure" data-figure="prevalence-breakdown">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel" id="coverage-breakdown" aria-labelledby="coverage-breakdown-h">
  <h2 id="coverage-breakdown-h">Coverage <span class="by-label">by organisation</span></h2>
  <div class="figure" data-figure="coverage-breakdown">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel" id="enquiry-acceptability" aria-labelledby="enquiry-acceptability-h">
  <h2 id="enquiry-acceptability-h">Routine enquiry: was it all right to be asked?
   <span class="by-label">by organisation</span></h2>
  <div class="figure" data-figure="enquiry-acceptability">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel" id="enquiry-not-asked" aria-labelledby="enquiry-not-asked-h">
  <h2 id="enquiry-not-asked-h">Routine enquiry: due but not asked, and why
   <span class="by-label">by organisation</span></h2>
  <div class="figure" data-figure="enquiry-not-asked">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel wide" id="engagement-funnel" aria-labelledby="engagement-funnel-h">
  <h2 id="engagement-funnel-h">Peer mentoring: people from referral to ending, by the
   organisation receiving the referral</h2>
  <div class="figure" data-figure="engagement-funnel">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel wide" id="engagement-referrers" aria-labelledby="engagement-referrers-h">
  <h2 id="engagement-referrers-h">Peer mentoring: people by the referring organisation</h2>
  <div class="figure" data-figure="engagement-referrers">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel wide" id="engagement-wellbeing" aria-labelledby="engagement-wellbeing-h">
  <h2 id="engagement-wellbeing-h">Peer mentoring: wellbeing (SWEMWBS) change from intake to
   exit</h2>
  <div class="figure" data-figure="engagement-wellbeing">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel wide" id="engagement-components" aria-labelledby="engagement-components-h">
  <h2 id="engagement-components-h">Peer mentoring: what it covered, feedback, adverse events and
   follow-ups</h2>
  <div class="figure" data-figure="engagement-components">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel wide" id="mentoring-offers" aria-labelledby="mentoring-offers-h">
  <h2 id="mentoring-offers-h">Offers of peer mentoring and what people said</h2>
  <div class="figure" data-figure="mentoring-offers">
   <p class="placeholder">Loading figures</p></div>
 </section>
 <section class="panel wide" id="feasibility-funnel" aria-labelledby="feasibility-funnel-h">
  <h2 id="feasibility-funnel-h">The feasibility funnel: from enquiry to follow-up</h2>
  <div class="figure" data-figure="feasibility-funnel">
   <p class="placeholder">Loading figures</p></div>
 </section>
</div>
<noscript><p class="alert">The charts need JavaScript; the same figures are available from the
 JSON API (/v1/prevalence, /v1/coverage, /v1/engagement, /v1/feasibility,
 /v1/mentoring-offers).</p></noscript>
</main>
<footer class="footer"><p>Every figure is disclosure-controlled; the method is stated
 beside every table. Every script and style on this page is served by the reporting service.</p>
</footer>""")


def _page(title: str, body: str, status: int = 200, script: bool = False) -> HTMLResponse:
    """A full HTML page with the dashboard's stylesheet and security headers."""
    js = '\n<script src="/static/dashboard.js" defer></script>' if script else ""
    document = f"""<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/dashboard.css">{js}
</head>
<body>
{body}
</body>
</html>
"""
    return HTMLResponse(document, status_code=status, headers=PAGE_HEADERS)


def login_page(message: str | None = None, status: int = 200) -> HTMLResponse:
    """The sign-in form, optionally with an error message."""
    alert = (f'<p class="alert" role="alert" id="login-error">{html.escape(message)}</p>'
             if message else "")
    described = ' aria-describedby="token-help login-error"' if message else \
        ' aria-describedby="token-help"'
    body = f"""<main class="login" id="main">
<h1>Sign in to the Peerlink operations dashboard</h1>
{alert}
<form method="post" action="/login" class="login-form">
<label for="token">Access token</label>
<p id="token-help" class="help">Paste the bearer token issued to you for the ops-viewer role.
It is checked once and not kept: you get a session until you sign out or it expires.</p>
<textarea id="token" name="token" rows="5" required autocomplete="off" autocapitalize="off"
 spellcheck="false"{described}></textarea>
<button type="submit">Sign in</button>
</form>
<p class="help">The dashboard shows de-identified, disclosure-controlled figures only.</p>
</main>"""
    return _page("Sign in - Peerlink operations dashboard", body, status)


def dashboard_page(org_name: str) -> HTMLResponse:
    """The dashboard's HTML shell; ``dashboard.js`` fills in the figures."""
    groups = "".join(f'<option value="{value}">{label}</option>' for value, label in (
        ("org", "Organisation"), ("team", "Team"), ("borough", "Borough"),
        ("gender", "Gender"), ("age_band", "Age band")))
    body = DASHBOARD_BODY.substitute(org_name=html.escape(org_name), groups=groups)
    return _page("Peerlink operations dashboard", body, script=True)
