"""Operations tooling: the ``peerlink`` command, the local supervisor (``peerlink up``), the
local broker, migrations and the demo traffic. ``shared`` never imports it."""
