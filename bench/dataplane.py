"""Data-plane benchmark: real guests (container driver + Linux bridge).

    sudo python3 bench/dataplane.py [--boots 20] [--instances 50]

Prints, beside the goals of issue 8:
- server create -> SSH login (keypair) p50/p90 over N boots (goal p50 < 2 s);
- host memory per instance with M m1.nano guests running;
- ping RTT and TCP throughput (iperf3) between two instances vs two bare
  namespaces on a veth pair.

It starts a cloud in this process (identity, image, network with
``l2_driver = linuxbridge``, compute with ``compute_driver = container``),
drives it with openstacksdk, and logs in over SSH from a thread placed in
the network's DHCP namespace (the host has no route into tenant networks).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def in_netns(ns: str, fn, *args):
    """Run ``fn`` in a thread that has entered network namespace ``ns``."""
    result = {}

    def run():
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        try:
            result["value"] = fn(*args)
        except Exception as exc:  # noqa: BLE001
            result["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def ssh_until_login(ip: str, key, deadline: float) -> float:
    import paramiko

    while time.monotonic() < deadline:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(ip, username="root", pkey=key, timeout=1, banner_timeout=2,
                           auth_timeout=2, allow_agent=False, look_for_keys=False)
            _i, out, _e = client.exec_command("true", timeout=5)
            out.channel.recv_exit_status()
            return time.monotonic()
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.02)
        finally:
            client.close()
    raise TimeoutError(f"no SSH login to {ip}")


def meminfo_available_kb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def pct(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def ping_rtt(ns_pid_or_ns: list[str], target: str) -> float:
    proc = subprocess.run([*ns_pid_or_ns, "ping", "-c", "50", "-i", "0.01", "-q", target],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ping failed: {proc.stdout} {proc.stderr}")
    out = proc.stdout
    # rtt min/avg/max/mdev = a/b/c/d ms
    return float(out.strip().splitlines()[-1].split("=")[1].split("/")[1])


def iperf(server_cmd: list[str], client_cmd: list[str], target: str) -> float:
    server = subprocess.Popen([*server_cmd, "iperf3", "-s", "-1", "-p", "5201"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = subprocess.run([*client_cmd, "iperf3", "-c", target, "-p", "5201", "-t", "5",
                              "-J"], capture_output=True, text=True, check=True).stdout
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        server.wait(15)


def bare_veth_pair() -> tuple[list[str], list[str], str]:
    a, b = f"bench-a-{uuid.uuid4().hex[:4]}", f"bench-b-{uuid.uuid4().hex[:4]}"
    for ns in (a, b):
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb",
                    "netns", b], check=True)
    subprocess.run(["ip", "-n", a, "addr", "add", "192.168.250.1/24", "dev", "va"], check=True)
    subprocess.run(["ip", "-n", b, "addr", "add", "192.168.250.2/24", "dev", "vb"], check=True)
    subprocess.run(["ip", "-n", a, "link", "set", "va", "up", "mtu", "1450"], check=True)
    subprocess.run(["ip", "-n", b, "link", "set", "vb", "up", "mtu", "1450"], check=True)
    return (["ip", "netns", "exec", a], ["ip", "netns", "exec", b], "192.168.250.2")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--boots", type=int, default=20)
    parser.add_argument("--instances", type=int, default=50)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (real namespaces)")
        return 2
    import paramiko

    from pocketstack.guest import integration
    from pocketstack.testing import start_cloud

    if os.environ.get("BENCH_DEBUG"):
        import logging

        logging.basicConfig(level=logging.WARNING)
        logging.getLogger("pocketstack.network.agents").setLevel(logging.INFO)
        logging.getLogger("pocketstack.compute").setLevel(logging.INFO)
    state = tempfile.mkdtemp(prefix="pocketstack-bench-dp-")
    host = f"bench-{uuid.uuid4().hex[:6]}"
    cloud = start_cloud(state, {
        "enabled_services": ["identity", "image", "network", "compute"],
        "network.l2_driver": "linuxbridge", "compute_driver": "container", "fake.hosts": 0,
        "host": host, "neutron.metadata_proxy_shared_secret": "bench-secret",
        "quota.instances": 1000, "quota.cores": 1000, "quota.ram": 10_000_000,
        "ram_allocation_ratio": 100.0, "cpu_allocation_ratio": 100.0})
    bare = None
    conn = cloud.connect()
    try:
        image_id = integration.register_guest_image(cloud.cloud)
        key = paramiko.RSAKey.generate(2048)
        conn.compute.create_keypair(name="bench", public_key=f"ssh-rsa {key.get_base64()} b")
        net = conn.network.create_network(name="bench")
        conn.network.create_subnet(network_id=net.id, cidr="10.123.0.0/16", ip_version=4)
        # security groups are enforced: allow SSH and ping into the default group
        group = conn.network.find_security_group("default", project_id=conn.current_project_id)
        for proto, port in (("tcp", 22), ("icmp", None)):
            conn.network.create_security_group_rule(
                security_group_id=group.id, direction="ingress", ethertype="IPv4",
                protocol=proto, port_range_min=port, port_range_max=port)
        flavor = conn.compute.find_flavor("m1.nano")
        driver = cloud.cloud.services["network"].driver
        driver.wait_converged()
        ns = f"qdhcp-{net.id}"
        _wait_file = time.monotonic() + 30
        while not os.path.exists(f"/run/netns/{ns}") and time.monotonic() < _wait_file:
            time.sleep(0.05)

        # 1. create -> SSH login
        times, to_active = [], []
        for i in range(args.boots):
            start = time.monotonic()
            server = conn.compute.create_server(name=f"boot-{i}", image_id=image_id,
                                                flavor_id=flavor.id, key_name="bench",
                                                networks=[{"uuid": net.id}])
            server = conn.compute.wait_for_server(server, interval=0.05, wait=120)
            active = time.monotonic()
            ip = next(iter(server.addresses.values()))[0]["addr"]
            try:
                done = in_netns(ns, ssh_until_login, ip, key, start + 120)
            except TimeoutError:
                agent = next(a.driver for a in cloud.cloud.services["compute"].agents)
                print(agent.get_console_output({"uuid": server.id})[-600:])
                ddir = os.path.join(driver.dhcp.dir, net.id)
                print(os.listdir(ddir), open(os.path.join(ddir, "hosts", "hosts")).read())
                print(open(os.path.join(ddir, "dnsmasq.log")).read()[-2500:])
                raise
            times.append(done - start)
            to_active.append(active - start)
            if os.environ.get("BENCH_DEBUG"):
                agent = next(a.driver for a in cloud.cloud.services["compute"].agents)
                print(f"boot {i}: ACTIVE at {active - start:.2f} s, SSH at {done - start:.2f} s")
                print(agent.get_console_output({"uuid": server.id}))
                log = os.path.join(driver.dhcp.dir, net.id, "dnsmasq.log")
                print("".join(line for line in open(log) if "DHCPDISCOVER" in line
                              or "DHCPACK" in line or "no address" in line or "read " in line)[-1500:])
            conn.compute.delete_server(server)
        print(f"server create -> SSH login over {len(times)} boots: "
              f"p50 {statistics.median(times):.2f} s, p90 {pct(times, 90):.2f} s, "
              f"min {min(times):.2f} s, max {max(times):.2f} s   (goal: p50 < 2 s)")
        print(f"  of which create -> ACTIVE (control plane + spawn): p50 "
              f"{statistics.median(to_active):.2f} s; ACTIVE -> SSH login (guest boot: DHCP, "
              f"metadata, dropbear): p50 "
              f"{statistics.median([t - a for t, a in zip(times, to_active, strict=True)]):.2f} s")
        for server in list(conn.compute.servers()):
            conn.compute.wait_for_delete(server, wait=120)

        # 2. memory per instance
        time.sleep(2)
        before = meminfo_available_kb()
        servers = [conn.compute.create_server(name=f"mem-{i}", image_id=image_id,
                                              flavor_id=flavor.id, key_name="bench",
                                              networks=[{"uuid": net.id}])
                   for i in range(args.instances)]
        for s in servers:
            conn.compute.wait_for_server(s, interval=0.2, wait=600)
        compute_driver = next(a.driver for a in cloud.cloud.services["compute"].agents)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            booted = sum("boot finished" in compute_driver.get_console_output({"uuid": s.id})
                         for s in servers)
            if booted == len(servers):
                break
            time.sleep(1)
        time.sleep(3)
        after = meminfo_available_kb()
        no_dhcp = [s for s in servers
                   if " bound " not in compute_driver.get_console_output({"uuid": s.id})]
        if no_dhcp:
            print(f"{len(no_dhcp)} guests got no DHCP lease")
            if os.environ.get("BENCH_DEBUG"):
                ddir = os.path.join(driver.dhcp.dir, net.id)
                print(os.listdir(ddir), open(os.path.join(ddir, "hosts", "hosts")).read())
                print([p.mac_address for p in conn.network.ports(device_id=no_dhcp[0].id)])
                print("".join(line for line in open(os.path.join(ddir, "dnsmasq.log"))
                              if "sent size" not in line and "requested" not in line)[-3000:])
        guest_kb = sum(compute_driver.get_info({"uuid": s.id}).mem_kb for s in servers)
        pss_kb = 0
        for s in servers:
            cg = compute_driver._record(s.id)["cgroups"]
            path = cg.get("pids") or cg.get("memory") or cg.get("v2")
            for pid in open(os.path.join(path, "cgroup.procs")).read().split():
                try:
                    for line in open(f"/proc/{pid}/smaps_rollup"):
                        if line.startswith("Pss:"):
                            pss_kb += int(line.split()[1])
                except OSError:
                    pass
        print(f"{len(servers)} instances ({booted} booted): guest processes' PSS "
              f"{pss_kb / len(servers) / 1024:.2f} MiB per instance; cgroup memory (incl. "
              f"kernel and page cache charged) {guest_kb / len(servers) / 1024:.2f} MiB per "
              f"instance; host MemAvailable drop {(before - after) / len(servers) / 1024:.1f} "
              f"MiB per instance (noisy: other work shares the host)")

        # 3. ping and iperf3: two instances vs a bare veth pair
        a, b = servers[0], servers[1]
        pa = compute_driver._record(a.id)["pid"]
        pb = compute_driver._record(b.id)["pid"]
        ip_b = next(iter(conn.compute.get_server(b.id).addresses.values()))[0]["addr"]
        na, nb = ["nsenter", "-t", str(pa), "-n"], ["nsenter", "-t", str(pb), "-n"]
        for s in servers[2:]:
            conn.compute.delete_server(s)
        rtt_i = ping_rtt(na, ip_b)
        bw_i = iperf(nb, na, ip_b) if shutil.which("iperf3") else float("nan")
        bare = bare_veth_pair()
        rtt_b = ping_rtt(bare[0], bare[2])
        bw_b = iperf(bare[1], bare[0], bare[2]) if shutil.which("iperf3") else float("nan")
        print(f"ping RTT: instances {rtt_i * 1000:.0f} us, bare veth {rtt_b * 1000:.0f} us "
              f"(ratio {rtt_i / rtt_b:.2f})")
        print(f"iperf3 TCP: instances {bw_i:.2f} Gbit/s, bare veth {bw_b:.2f} Gbit/s "
              f"(ratio {bw_i / bw_b:.2f})")
    finally:
        for server in list(conn.compute.servers()):
            conn.compute.delete_server(server)
        for server in list(conn.compute.servers()):
            try:
                conn.compute.wait_for_delete(server, wait=300)
            except Exception:  # noqa: BLE001
                pass
        for n in conn.network.networks():
            for port in conn.network.ports(network_id=n.id):
                if port.device_owner.startswith("compute:"):
                    conn.network.delete_port(port)
            conn.network.delete_network(n)
        cloud.cloud.services["network"].driver.wait_converged(60)
        cloud.stop()
        if bare:
            for cmd in bare[:2]:
                subprocess.run(["ip", "netns", "delete", cmd[3]], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
