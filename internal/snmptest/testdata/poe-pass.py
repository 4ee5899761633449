#!/usr/bin/python3 -u
"""net-snmp pass_persist helper emulating a PoE switch (for snmpd.conf):
  pass_persist .1.3.6.1.2.1.105.1.1.1 /path/poe-pass.py   POWER-ETHERNET-MIB pethPsePortTable (group 1, ports 1..N)
     .3.1.<p> pethPsePortAdminEnable  TruthValue RW (1=true, 2=false), persisted in $POE_STATE
     .6.1.<p> pethPsePortDetectionStatus  RO: deliveringPower(3) if enabled else disabled(1)
  pass_persist .1.3.6.1.2.1.17.4.3 /path/poe-pass.py      BRIDGE-MIB dot1dTpFdbTable, from $POE_FDB ("port mac" lines)
     .1.1.<mac> dot1dTpFdbAddress, .1.2.<mac> dot1dTpFdbPort, .1.3.<mac> dot1dTpFdbStatus learned(3)
  pass_persist .1.3.6.1.2.1.17.1.4 /path/poe-pass.py      BRIDGE-MIB dot1dBasePortIfIndex, from $POE_IFINDEX ("port ifindex" lines)
     .1.2.<port> dot1dBasePortIfIndex (only when $POE_IFINDEX names an existing file)
Every accepted SET is appended to $POE_LOG ("<unix time> port <p> admin <v>").

Origin: the reconciled netboot research recipes, shared/recipes/netboot/snmp/poe-pass.py
(run there against Debian's snmpd 5.9.3 by snmp-test.sh), copied for internal/snmptest.
Local change: the optional $POE_IFINDEX table (dot1dBasePortIfIndex) above; nothing else."""
import os, sys, time
D = os.path.dirname(os.path.abspath(__file__))
STATE = os.environ.get("POE_STATE", os.path.join(D, "poe-state.txt"))
FDB = os.environ.get("POE_FDB", os.path.join(D, "fdb.txt"))
LOG = os.environ.get("POE_LOG", os.path.join(D, "poe-sets.log"))
IFINDEX = os.environ.get("POE_IFINDEX", "")
NPORTS = int(os.environ.get("POE_PORTS", "8"))
PETH = (1, 3, 6, 1, 2, 1, 105, 1, 1, 1)
FDBT = (1, 3, 6, 1, 2, 1, 17, 4, 3)
BASEPORT = (1, 3, 6, 1, 2, 1, 17, 1, 4)

def load_state():
    st = {p: 1 for p in range(1, NPORTS + 1)}
    if os.path.exists(STATE):
        for line in open(STATE):
            f = line.split()
            if len(f) == 2: st[int(f[0])] = int(f[1])
    return st

def save_state(st):
    tmp = STATE + ".tmp"
    with open(tmp, "w") as fh:
        for p in sorted(st): fh.write(f"{p} {st[p]}\n")
    os.replace(tmp, STATE)

def rows():
    """all (oid tuple, type, value) currently exposed, sorted"""
    out = []
    st = load_state()
    for p, v in st.items():
        out.append((PETH + (3, 1, p), "integer", str(v)))
        out.append((PETH + (6, 1, p), "integer", "3" if v == 1 else "1"))
    if os.path.exists(FDB):
        for line in open(FDB):
            f = line.split()
            if len(f) != 2: continue
            port, mac = int(f[0]), [int(b, 16) for b in f[1].split(":")]
            idx = tuple(mac)
            out.append((FDBT + (1, 1) + idx, "octet", " ".join(f"{b:02x}" for b in mac)))
            out.append((FDBT + (1, 2) + idx, "integer", str(port)))
            out.append((FDBT + (1, 3) + idx, "integer", "3"))
    if IFINDEX and os.path.exists(IFINDEX):
        for line in open(IFINDEX):
            f = line.split()
            if len(f) != 2: continue
            out.append((BASEPORT + (1, 2, int(f[0])), "integer", str(int(f[1]))))
    out.sort()
    return out

def parse(oid): return tuple(int(x) for x in oid.strip().strip(".").split(".") if x)
def fmt(t): return "." + ".".join(map(str, t))
DEBUG = os.environ.get("POE_DEBUG")
def dbg(tag, s):
    if DEBUG:
        with open(DEBUG, "a") as fh: fh.write(f"{tag} {s!r}\n")
def say(*lines):
    dbg(">>", lines)
    sys.stdout.write("\n".join(lines) + "\n"); sys.stdout.flush()
def readline():
    l = sys.stdin.readline(); dbg("<<", l); return l

while True:
    cmd = readline()
    if not cmd: break
    cmd = cmd.strip().lower()
    if not cmd: continue  # snmpd sends an extra blank line after each "set" block: answering it desyncs the pipe
    if cmd == "ping": say("PONG"); continue
    if cmd in ("get", "getnext"):
        req = parse(readline())
        hit = None
        for oid, typ, val in rows():
            if (cmd == "get" and oid == req) or (cmd == "getnext" and oid > req):
                hit = (oid, typ, val); break
        say(fmt(hit[0]), hit[1], hit[2]) if hit else say("NONE")
    elif cmd == "set":
        req = parse(readline()); tv = readline().split()
        if len(req) == len(PETH) + 3 and req[:len(PETH)] == PETH and req[len(PETH)] == 3 and req[-2] == 1:
            port = req[-1]; st = load_state()
            if port not in st: say("no-creation"); continue
            if not tv or tv[0] != "integer": say("wrong-type"); continue
            if tv[1] not in ("1", "2"): say("wrong-value"); continue
            st[port] = int(tv[1]); save_state(st)
            with open(LOG, "a") as fh: fh.write(f"{time.time():.3f} port {port} admin {tv[1]}\n")
            say("DONE")
        else:
            say("not-writable")
    else:
        say("NONE")
