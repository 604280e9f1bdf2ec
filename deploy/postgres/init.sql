-- Peerlink: one database and one login role per service, each role owning only its database.
--
-- Run once by the postgres image's entrypoint (/docker-entrypoint-initdb.d) when the data
-- volume is first initialised; it does not run again on an existing volume.
--
-- !!! DEVELOPMENT-ONLY PASSWORDS !!!
-- The passwords below are published in this repository and repeated in docker-compose.yml's
-- PEERLINK_<SERVICE>_DATABASE_URL values. They exist so `docker compose up` works out of the
-- box on a developer machine. Never use them anywhere reachable by real data: production
-- roles and passwords come from the secret store (see deploy/README.md and docs/operations.md).

\set ON_ERROR_STOP on

CREATE ROLE consent    LOGIN PASSWORD 'consent-dev-only-password';
CREATE ROLE screening  LOGIN PASSWORD 'screening-dev-only-password';
CREATE ROLE mentoring  LOGIN PASSWORD 'mentoring-dev-only-password';
CREATE ROLE reporting  LOGIN PASSWORD 'reporting-dev-only-password';

CREATE DATABASE consent   OWNER consent   ENCODING 'UTF8';
CREATE DATABASE screening OWNER screening ENCODING 'UTF8';
CREATE DATABASE mentoring OWNER mentoring ENCODING 'UTF8';
CREATE DATABASE reporting OWNER reporting ENCODING 'UTF8';

-- Services own their data: no role may connect to another service's database.
REVOKE ALL ON DATABASE consent   FROM PUBLIC;
REVOKE ALL ON DATABASE screening FROM PUBLIC;
REVOKE ALL ON DATABASE mentoring FROM PUBLIC;
REVOKE ALL ON DATABASE reporting FROM PUBLIC;

GRANT CONNECT, TEMPORARY ON DATABASE consent   TO consent;
GRANT CONNECT, TEMPORARY ON DATABASE screening TO screening;
GRANT CONNECT, TEMPORARY ON DATABASE mentoring TO mentoring;
GRANT CONNECT, TEMPORARY ON DATABASE reporting TO reporting;

-- Nor to the maintenance database.
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
