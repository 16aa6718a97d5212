"""Line-echo servers, one module per implementation.

Each module has ``serve(listener, seconds)``: echo every line received on
every client of ``listener`` (a listening TCP socket) back to its sender, in
one thread, for at most ``seconds``. ``bench/echo_server.py`` runs one of them.
"""
