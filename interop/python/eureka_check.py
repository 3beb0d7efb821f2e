"""Runs py-eureka-client, a standard Eureka client from PyPI, against a
Eureka server (our registry, in tests/interop.rs), as a Python service would
use it: register, be listed UP, find MIDDLETIER by app and by VIP (through
the client's own copy of the registry, and through single lookups), then
stop and deregister.

Usage: eureka_check.py <eureka-url> <middletier-instance-id>
Prints one JSON object with what it saw; exits non-zero on any failure.
"""

import asyncio
import json
import sys

from py_eureka_client import eureka_basic, eureka_client

APP = "PYCHECK"


def instance_ids(application):
    if application is None:
        return []
    return sorted(i.instanceId for i in application.instances)


async def main(url, middletier_id):
    seen = {}
    client = await eureka_client.init_async(
        eureka_server=url,
        app_name=APP.lower(),
        instance_id="pycheck-1",
        instance_host="127.0.0.1",
        instance_ip="127.0.0.1",
        instance_port=9999,
        renewal_interval_in_secs=1,
        duration_in_secs=30,
        # Errors must fail the check, not be logged and skipped.
        strict_service_error_policy=True,
    )
    # The full registry the client pulled when it started: `apps/`.
    pulled = client.applications
    seen["pulled_apps"] = sorted(a.name for a in pulled.applications)
    seen["pulled_middletier"] = instance_ids(pulled.get_application("MIDDLETIER"))

    mine = await eureka_basic.get_app_instance(url, APP, "pycheck-1")
    seen["self_status"] = mine.status
    by_app = await eureka_basic.get_application(url, "MIDDLETIER")
    seen["by_app"] = [(i.instanceId, i.status) for i in by_app.up_instances]
    by_vip = await eureka_basic.get_vip(url, "middletier")
    seen["by_vip"] = sorted(
        i.instanceId for a in by_vip.applications for i in a.up_instances
    )
    delta = await eureka_basic.get_delta(url)
    seen["delta_ok"] = delta is not None

    await eureka_client.stop_async()
    after = await eureka_basic.get_applications(url)
    seen["after_stop"] = sorted(a.name for a in after.applications)

    print(json.dumps(seen))
    ok = (
        middletier_id in seen["pulled_middletier"]
        and seen["self_status"] == "UP"
        and (middletier_id, "UP") in [tuple(x) for x in seen["by_app"]]
        and middletier_id in seen["by_vip"]
        and APP not in seen["after_stop"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
