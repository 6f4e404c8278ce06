"""The deployment files users copy (deploy/compose.yaml, its env file example, the HAProxy
configuration): every service's settings, as the image, the env file and the compose file
combine them, are read by the server itself, and every port the files publish or balance to is
one the server really listens on. No container engine runs compose here (no registry images
can be pulled), so the files are checked against the binary the image is built from."""

import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from conftest import REPO, _binary, _clean_env

DEPLOY = REPO / "deploy"
IMAGE = "smsgate-smpp:latest"


def image_env():
    """The ENV of ./Dockerfile, which every container of the image starts with."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(dict(pair.split("=", 1) for pair in line[4:].split()))
    return env


def env_file(path):
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            pairs[key] = value
    return pairs


def compose():
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def effective_config(service):
    """What `smsgate-smpp config` reads for a compose service: the image's ENV, then the env
    file (the example users copy), then the service's own environment."""
    env = image_env()
    if "env_file" in service:
        env.update(env_file(DEPLOY / "smsgate-smpp.env.example"))
    env.update({key: str(value) for key, value in service.get("environment", {}).items()})
    done = subprocess.run(
        [str(_binary()), "config"], env=_clean_env(env), capture_output=True, text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return tomllib.loads(done.stdout)


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def listener_ports(config):
    return {
        port_of(config["smpp"]["bind_address"]),
        port_of(config["smpp"]["tls_bind_address"]),
        port_of(config["http"]["address"]),
    }


def server_services():
    return {name: s for name, s in compose()["services"].items() if s["image"] == IMAGE}


def test_every_profile_a_user_is_told_about_exists():
    header = (DEPLOY / "compose.yaml").read_text()
    told = set(re.findall(r"--profile (\w+)", header))
    profiles = {p for s in compose()["services"].values() for p in s["profiles"]}
    assert told == profiles == {"simulator", "production", "ha"}


@pytest.mark.parametrize("name", ["simulator", "server", "instance"])
def test_the_server_reads_each_services_settings_and_listens_on_its_published_ports(name):
    service = server_services()[name]
    config = effective_config(service)
    # Inside a container the listeners must bind every interface to be reachable at all.
    for address in (config["smpp"]["bind_address"], config["http"]["address"]):
        assert address.startswith("0.0.0.0:"), address
    published = {int(p.split(":")[1]) for p in service.get("ports", [])}
    assert published <= listener_ports(config), (published, listener_ports(config))
    assert config["plugins"]["dir"] == "/plugins"
    mounts = {v.split(":")[1] for v in service.get("volumes", [])}
    if "env_file" in service:
        assert "/plugins" in mounts and "/certs" in mounts
        assert config["smpp"]["tls_cert"].startswith("/certs/")
        assert config["gateway"]["webhook_base_url"].startswith("https://")


def test_the_ha_instances_share_the_compose_redis():
    services = compose()["services"]
    config = effective_config(services["instance"])
    assert config["delivery"]["store"] == "redis"
    host = re.match(r"redis://([^:/]+)", config["delivery"]["redis_url"]).group(1)
    assert host in services and services[host]["image"].startswith("redis:")
    assert services["instance"]["deploy"]["replicas"] >= 2


def test_haproxy_balances_to_the_instances_listeners_and_checks_their_readiness():
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    cfg = DEPLOY / "haproxy" / "haproxy.cfg"
    checked = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    services = compose()["services"]
    config = effective_config(services["instance"])
    http = port_of(config["http"]["address"])
    text = cfg.read_text()
    targets = {int(p) for p in re.findall(r"server-template \S+ \S+ instance:(\d+)", text)}
    assert targets == listener_ports(config)
    # The SMPP backends are health-checked over HTTP on the instance's HTTP port.
    assert set(re.findall(r"check port (\d+)", text)) == {str(http)}
    assert text.count("option httpchk GET /health/ready") == 3
    # The balancer publishes what the frontends bind.
    frontends = {int(p) for p in re.findall(r"bind :(\d+)", text)}
    published = {int(p.split(":")[1]) for p in services["balancer"]["ports"]}
    assert frontends == published
    mounted = services["balancer"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mounted).resolve() == cfg.resolve()
