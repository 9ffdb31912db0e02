"""The ASGI entry point, next to portal/wsgi.py: the browser console's websocket proxy
(instances/console_proxy.py). Pages stay on the WSGI server; plain HTTP here goes to Django's
own ASGI handler all the same.

    uvicorn portal.asgi:application --host 127.0.0.1 --port 8001 --no-access-log

(`make run` starts it; the README's production layout puts it behind the same proxy as gunicorn,
for `/console/ws/`.)
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_application = get_asgi_application()  # sets Django up before the proxy imports models

from instances.console_proxy import console_websocket  # noqa: E402


async def application(scope, receive, send):
    if scope["type"] == "websocket":
        await console_websocket(scope, receive, send)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    else:
        await django_application(scope, receive, send)
