"""The sandbox's RDS: moto answers the RDS API, a real PostgreSQL server holds the databases.

A small HTTP shim in front of moto (started by e2e/env.sh, it is what AWS_ENDPOINT_URL names).
Every request goes to moto unchanged; moto's answer decides. When moto accepts one of these, the
shim does the same to the PostgreSQL server:

  CreateDBInstance (engine postgres)    a role for the master user with the master password, the
                                        databases `postgres` and DBName (as RDS creates them; made
                                        at the first login or restore), and an endpoint of the
                                        instance's own: a loopback port
  ModifyDBInstance MasterUserPassword   ALTER ROLE ... PASSWORD
  CreateDBSnapshot, and DeleteDBInstance with a final snapshot
                                        pg_dump of each database into
                                        <snapshots>/<region>/<snapshot id>/<db>.sql (plain SQL)
  DeleteDBInstance                      drops the databases and the role (after the final dump)
  RestoreDBInstanceFromDBSnapshot       a new instance with the snapshot's master user, password
                                        and data
  DeleteDBSnapshot                      removes the dump

and it rewrites Endpoint.Address/Port in every DBInstance it answers with to 127.0.0.1 and that
instance's port.

The network around the databases is moto's own (EC2 VPCs, subnets, security groups and rules; RDS
DB subnet and parameter groups). Where moto accepts what AWS refuses, the shim refuses it first,
with AWS's error code, so that paved's handling of the refusal is tested:

  CreateDBSubnetGroup, ModifyDBSubnetGroup
                                        subnets in fewer than two availability zones:
                                        DBSubnetGroupDoesNotCoverEnoughAZs
  DeleteDBSubnetGroup                   still used by a DB instance: InvalidDBSubnetGroupStateFault
  DeleteDBParameterGroup                still used by a DB instance: InvalidDBParameterGroupState
  ModifyDBParameterGroup, ResetDBParameterGroup
                                        more than 20 parameters: InvalidParameterValue
  DeleteSecurityGroup (EC2)             still used by a DB instance, or named as the source of
                                        another group's rule: DependencyViolation

and it answers, as AWS does, two parameter-group calls moto lacks or answers in part:

  ResetDBParameterGroup                 moto has none (it fails with an HTML 500): the shim
                                        checks the group exists and resets the named parameters
                                        (or all, with ResetAllParameters) to the family's
                                        defaults. moto keeps only the parameters set on a group,
                                        so a reset one is hidden from DescribeDBParameters until
                                        ModifyDBParameterGroup sets it again
  DescribeDBParameters                  paged by MaxRecords (20 to 100, default 100) and Marker,
                                        and filtered by Source; every parameter moto keeps is one
                                        set on the group (Source `user`), so `engine-default` and
                                        `system` list none of the family's defaults

Why a port per instance: on RDS each instance is its own server, so two instances may both have
the master user `postgres` with different passwords and both a database `postgres`. One shared
PostgreSQL server has one namespace of roles and databases, so the shim keeps them apart under
instance-qualified names (role `postgres@<identifier>`, database `postgres@<identifier>`; with
`.<region>` after the identifier when another region has an instance of that name; shortened with
a hash past PostgreSQL's 63 bytes) and listens on the instance's port: a connection there is
TLS-terminated (the sandbox certificate), its startup message's user and database are mapped to
the instance's names, and the rest of the session, authentication included, is PostgreSQL's own
(the password is checked by the server, SCRAM-SHA-256). An application therefore logs in with
exactly what paved wrote to the Secret. What it sees inside: `current_user` and
`current_database()` are the qualified names.

PAVED_RDS_TRACE=1 in the environment of `e2e/env.sh up` logs one line per request.
"""

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te", "upgrade"}
DBI_BLOCK = re.compile(r"<DBInstance>(.*?)</DBInstance>", re.S)
ENDPOINT = re.compile(r"<Endpoint>(.*?)</Endpoint>", re.S)


def log(msg):
    print(f"[rds-backend {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def literal(value):
    return "'" + value.replace("'", "''") + "'"


def pg_name(full):
    """A PostgreSQL identifier (at most 63 bytes) for `full`, unique: shortened with a hash."""
    if len(full.encode()) <= 63:
        return full
    digest = hashlib.sha1(full.encode()).hexdigest()[:10]
    return full.encode()[:52].decode("utf-8", "ignore") + "~" + digest


def role_name(user, qualifier):
    return pg_name(f"{user}@{qualifier}")


def db_name(dbname, qualifier):
    return pg_name(f"{dbname}@{qualifier}")


def port_range():
    """Below the kernel's ephemeral range (the rule e2e/env.sh uses for every listener)."""
    try:
        low, high = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    except OSError:
        low, high = 32768, 60999
    return (10000, low - 1) if low > 12000 else (high + 1, 65535)


class Backend:
    """The PostgreSQL side: roles, databases, dumps, and one TLS listener per instance."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()  # guards self.instances and the state file
        self.key_locks = {}
        self.instances = {}  # "region/identifier" -> record
        self.state_file = os.path.join(args.state_dir, "instances.json")
        self.snapshots = args.snapshots
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(args.cert, args.key)
        self.loop = asyncio.new_event_loop()
        self.servers = {}
        threading.Thread(target=self.loop.run_forever, daemon=True, name="pg-proxy").start()
        if os.path.exists(self.state_file):
            with open(self.state_file) as f:
                self.instances = json.load(f)
            for key, rec in self.instances.items():
                self.listen(key, rec["port"])

    # --- bookkeeping -----------------------------------------------------------------------

    def key_lock(self, key):
        with self.lock:
            return self.key_locks.setdefault(key, threading.RLock())

    def save(self):
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.instances, f, indent=1, sort_keys=True)
        os.replace(tmp, self.state_file)

    def get(self, key):
        with self.lock:
            rec = self.instances.get(key)
            return dict(rec) if rec else None

    def put(self, key, rec):
        with self.lock:
            self.instances[key] = rec
            self.save()

    def forget(self, key):
        with self.lock:
            rec = self.instances.pop(key, None)
            self.save()
        if rec:
            self.unlisten(rec["port"])

    # --- SQL ---------------------------------------------------------------------------------

    def psql(self, sql, db="postgres"):
        cmd = [os.path.join(self.args.pg_bin, "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1",
               "-h", self.args.pg_socket, "-p", str(self.args.pg_port), "-U", self.args.pg_user, "-d", db]
        res = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"psql on {db}: {res.stderr.strip()}")
        return res.stdout

    def create(self, rec, password=None, verifier=None):
        """The master role. Its databases come with the first use (materialize)."""
        role = rec["role"]
        secret = password if password is not None else verifier
        self.psql("\n".join([
            f"SELECT format('CREATE ROLE %I', {literal(role)}) WHERE NOT EXISTS "
            f"(SELECT FROM pg_roles WHERE rolname = {literal(role)})\\gexec",
            f"ALTER ROLE {ident(role)} LOGIN CREATEDB CREATEROLE PASSWORD {literal(secret)};",
        ]) + "\n")

    def materialize(self, key):
        """Create the instance's databases the first time something needs them: a login at its
        endpoint, a restore. CREATE DATABASE copies ~7 MB of template in ~0.2 s; a fleet of
        hundreds of instances that nobody logs in to (the scale tests) should not cost that.
        Returns the record (None when the instance is gone)."""
        with self.key_lock(key):
            rec = self.get(key)
            if rec is None or rec.get("materialized"):
                return rec
            role, sql = rec["role"], []
            for db in rec["databases"].values():
                sql += [
                f"SELECT format('CREATE DATABASE %I OWNER %I', {literal(db)}, {literal(role)}) WHERE NOT EXISTS "
                f"(SELECT FROM pg_database WHERE datname = {literal(db)})\\gexec",
                f"REVOKE CONNECT, TEMPORARY ON DATABASE {ident(db)} FROM PUBLIC;",
                f"GRANT CONNECT, TEMPORARY ON DATABASE {ident(db)} TO {ident(role)};",
            ]
            self.psql("\n".join(sql) + "\n")
            rec["materialized"] = True
            self.put(key, rec)
            log(f"{key}: databases {sorted(rec['databases'].values())} created (first use)")
            return rec

    def empty_dump(self):
        """What pg_dump says of a database nobody used (the dump of one made for the purpose)."""
        with self.lock:
            if getattr(self, "_empty_dump", None) is None:
                self.psql("SELECT 'CREATE DATABASE sandbox_empty' WHERE NOT EXISTS "
                          "(SELECT FROM pg_database WHERE datname = 'sandbox_empty')\\gexec\n")
                self._empty_dump = self.pg_dump("sandbox_empty", None)
            return self._empty_dump

    def pg_dump(self, db, path):
        cmd = [os.path.join(self.args.pg_bin, "pg_dump"), "-h", self.args.pg_socket, "-p", str(self.args.pg_port),
               "-U", self.args.pg_user, "--no-owner", "--no-privileges", db]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            raise RuntimeError(f"pg_dump {db}: {res.stderr.strip()}")
        if path:
            with open(path, "w") as f:
                f.write(res.stdout)
        return res.stdout

    def set_password(self, rec, password):
        self.psql(f"ALTER ROLE {ident(rec['role'])} PASSWORD {literal(password)};\n")

    def drop(self, rec):
        sql = [f"DROP DATABASE IF EXISTS {ident(db)} WITH (FORCE);" for db in rec["databases"].values()]
        sql.append(f"DROP ROLE IF EXISTS {ident(rec['role'])};")
        self.psql("\n".join(sql) + "\n")

    def snapshot_dir(self, region, snapshot_id):
        return os.path.join(self.snapshots, region, snapshot_id)

    def dump(self, rec, region, snapshot_id):
        """pg_dump of each database of the instance (plain SQL, no owners or grants: a restore
        gives everything to the new instance's master role), plus what a restore needs."""
        out = self.snapshot_dir(region, snapshot_id)
        tmp = out + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        materialized = (self.get(f"{region}/{rec['identifier']}") or rec).get("materialized")
        for name, db in rec["databases"].items():
            path = os.path.join(tmp, f"{name}.sql")
            if materialized:
                self.pg_dump(db, path)
            else:
                with open(path, "w") as f:
                    f.write(self.empty_dump())
        verifier = self.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = {literal(rec['role'])};\n").strip()
        meta = {"identifier": rec["identifier"], "region": region, "username": rec["username"],
                "databases": sorted(rec["databases"]), "password_verifier": verifier,
                "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with open(os.path.join(tmp, "snapshot.json"), "w") as f:
            json.dump(meta, f, indent=1)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
        log(f"snapshot {region}/{snapshot_id} of {rec['identifier']}: {out}")

    def restore(self, rec, region, snapshot_id):
        src = self.snapshot_dir(region, snapshot_id)
        with open(os.path.join(src, "snapshot.json")) as f:
            meta = json.load(f)
        self.create(rec, verifier=meta["password_verifier"])
        self.materialize(f"{region}/{rec['identifier']}")
        for name, db in rec["databases"].items():
            path = os.path.join(src, f"{name}.sql")
            if os.path.exists(path):
                with open(path) as f:
                    self.psql(f"SET ROLE {ident(rec['role'])};\n" + f.read(), db=db)

    # --- the per-instance endpoint -------------------------------------------------------------

    def allocate_port(self, key):
        lo, hi = port_range()
        for _ in range(200):
            port = random.randint(lo, hi)
            try:
                self.listen(key, port)
                return port
            except OSError:
                continue
        raise RuntimeError("no free loopback port for the instance endpoint")

    def listen(self, key, port):
        fut = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(lambda r, w: self.serve(key, r, w), "127.0.0.1", port), self.loop)
        self.servers[port] = fut.result(timeout=10)

    def unlisten(self, port):
        server = self.servers.pop(port, None)
        if server:
            self.loop.call_soon_threadsafe(server.close)

    async def serve(self, key, reader, writer):
        try:
            await self.proxy(key, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        except Exception:  # keep serving other connections; say what broke
            log(f"endpoint {key}: {traceback.format_exc()}")
        finally:
            writer.close()

    @staticmethod
    async def packet(reader):
        head = await reader.readexactly(4)
        length = int.from_bytes(head, "big")
        if length < 8 or length > 10000:
            raise ConnectionError("not a PostgreSQL startup packet")
        return await reader.readexactly(length - 4)

    @staticmethod
    def error(message, code="28000"):
        fields = b"SFATAL\0VFATAL\0C" + code.encode() + b"\0M" + message.encode() + b"\0\0"
        return b"E" + (len(fields) + 4).to_bytes(4, "big") + fields

    async def proxy(self, key, reader, writer):
        body = await self.packet(reader)
        code = int.from_bytes(body[:4], "big")
        if code == 80877104:  # GSSENCRequest: no
            writer.write(b"N")
            await writer.drain()
            body = await self.packet(reader)
            code = int.from_bytes(body[:4], "big")
        if code == 80877103:  # SSLRequest: yes, with the sandbox certificate
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(self.tls)
            body = await self.packet(reader)
            code = int.from_bytes(body[:4], "big")
        socket_path = os.path.join(self.args.pg_socket, f".s.PGSQL.{self.args.pg_port}")
        if code == 80877102:  # CancelRequest: the server's own key, passed on
            _, up_w = await asyncio.open_unix_connection(socket_path)
            up_w.write((len(body) + 4).to_bytes(4, "big") + body)
            await up_w.drain()
            up_w.close()
            return
        if code != 196608:
            raise ConnectionError(f"unsupported protocol {code}")
        rec = await asyncio.get_running_loop().run_in_executor(None, self.materialize, key)
        up_r, up_w = await asyncio.open_unix_connection(socket_path)
        try:
            parts = body[4:].split(b"\0")
            params = {}
            for i in range(0, len(parts) - 1, 2):
                if parts[i]:
                    params[parts[i].decode()] = parts[i + 1].decode()
            user = params.get("user", "")
            if rec is None:
                writer.write(self.error(f"the RDS instance behind this endpoint ({key}) no longer exists", "08006"))
                await writer.drain()
                return
            database = params.get("database") or user
            params["user"] = role_name(user, rec["qualifier"])
            params["database"] = rec["databases"].get(database, db_name(database, rec["qualifier"]))
            out = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
            out = (196608).to_bytes(4, "big") + out
            up_w.write((len(out) + 4).to_bytes(4, "big") + out)
            await up_w.drain()
            await asyncio.gather(self.pipe(reader, up_w), self.pipe(up_r, writer))
        finally:
            up_w.close()

    @staticmethod
    async def pipe(src, dst):
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                dst.write(data)
                await dst.drain()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            try:
                if dst.can_write_eof():
                    dst.write_eof()
                else:
                    dst.close()
            except (OSError, RuntimeError):
                pass


def header(headers, name, default=""):
    name = name.lower()
    return next((v for k, v in headers.items() if k.lower() == name), default)


def region_of(headers):
    auth = header(headers, "Authorization")
    m = re.search(r"Credential=[^/]*/[^/]*/([^/]*)/", auth)
    return m.group(1) if m else "us-east-1"


def error_xml(code, message):
    return (f'<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Receiver</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
            f"</ErrorResponse>").encode()


def ec2_error_xml(code, message):
    return (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{uuid.uuid4()}</RequestID></Response>").encode()


def refused(code, message, ec2=False):
    body = ec2_error_xml(code, message) if ec2 else error_xml(code, message)
    return 400, [("Content-Type", "text/xml")], body


def xml_values(tag, text):
    return re.findall(rf"<{tag}>(.*?)</{tag}>", text, re.S)


def numbered(params, prefix):
    """The values of a query-API list (`SubnetIds.member.1`, `SubnetIds.SubnetIdentifier.1`, ...)."""
    return [v for k, v in sorted(params.items()) if k.startswith(prefix + ".")]


PARAMETER_BLOCK = re.compile(r"<Parameter>(.*?)</Parameter>", re.S)
PARAMETER_NAME = re.compile(r"^Parameters\.(?:Parameter|member)\.\d+\.ParameterName$")


def parameter_names(params):
    """The ParameterName of each entry of a query-API Parameters list."""
    return [v for k, v in params.items() if PARAMETER_NAME.match(k)]


def ok_xml(action, result):
    return 200, [("Content-Type", "text/xml")], (
        f'<{action}Response xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><{action}Result>{result}'
        f"</{action}Result><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</{action}Response>").encode()


class Shim:
    def __init__(self, args, backend):
        self.moto = urllib.parse.urlsplit(args.moto_url)
        self.backend = backend
        self.trace = os.environ.get("PAVED_RDS_TRACE") == "1"  # one log line per request
        # Parameters reset to the family's defaults, per (region, group): lowercase names. moto
        # cannot forget a parameter, so DescribeDBParameters hides these.
        self.reset = {}
        self.reset_lock = threading.Lock()

    def forward(self, method, path, headers, body):
        conn = http.client.HTTPConnection(self.moto.hostname, self.moto.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def rewrite(self, region, body):
        """Endpoint.Address/Port of each DBInstance the shim backs → 127.0.0.1:<its port>."""
        text = body.decode("utf-8")

        def one(m):
            block = m.group(1)
            ident_m = re.search(r"<DBInstanceIdentifier>(.*?)</DBInstanceIdentifier>", block)
            rec = ident_m and self.backend.get(f"{region}/{ident_m.group(1)}")
            if not rec:
                return m.group(0)
            endpoint = f"<Endpoint><Address>127.0.0.1</Address><Port>{rec['port']}</Port></Endpoint>"
            if ENDPOINT.search(block):
                block = ENDPOINT.sub(lambda _: endpoint, block, count=1)
            return f"<DBInstance>{block}</DBInstance>"

        return DBI_BLOCK.sub(one, text).encode("utf-8")

    def handle(self, method, path, headers, body):
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
        if body and "x-www-form-urlencoded" in header(headers, "Content-Type", "x-www-form-urlencoded"):
            try:
                params.update(urllib.parse.parse_qsl(body.decode("utf-8")))
            except UnicodeDecodeError:
                pass
        action = params.get("Action", "")
        region = region_of(headers)
        act = getattr(self, f"on_{action}", None)
        if act is None:
            status, hdrs, out = self.forward(method, path, headers, body)
        else:
            key = f"{region}/{params.get('DBInstanceIdentifier', '')}"
            with self.backend.key_lock(key):
                status, hdrs, out = act(region, key, params, lambda: self.forward(method, path, headers, body))
        if status == 200 and b"<DBInstance>" in out:
            out = self.rewrite(region, out)
        if self.trace:
            log(f"{action or method + ' ' + path} {region} {params.get('DBInstanceIdentifier', '')} -> {status}")
        return status, hdrs, out

    def failed(self, what, err):
        log(f"{what}: {err}")
        return 500, [("Content-Type", "text/xml")], error_xml(
            "InternalFailure", f"sandbox PostgreSQL backend: {what}: {err}")

    # --- the network: what AWS refuses and moto does not ---------------------------------------

    def moto_call(self, region, service, params):
        """One query-API call to moto (for the shim's own checks): the response text."""
        body = urllib.parse.urlencode(params)
        auth = (f"AWS4-HMAC-SHA256 Credential=testing/20200101/{region}/{service}/aws4_request, "
                "SignedHeaders=host, Signature=0")
        status, _, out = self.forward("POST", "/", {"Content-Type": "application/x-www-form-urlencoded",
                                                    "Authorization": auth}, body)
        return status, out.decode("utf-8", "replace")

    def instances_using(self, region, tag, value):
        """Identifiers of the DB instances whose description has <tag>value</tag>."""
        _, text = self.moto_call(region, "rds", {"Action": "DescribeDBInstances", "Version": "2014-10-31"})
        users = []
        for block in DBI_BLOCK.findall(text):
            if value in xml_values(tag, block):
                users.extend(xml_values("DBInstanceIdentifier", block)[:1])
        return users

    def check_azs(self, region, params, forward):
        ids = numbered(params, "SubnetIds")
        if ids:
            query = {"Action": "DescribeSubnets", "Version": "2016-11-15"}
            for i, sid in enumerate(ids, 1):
                query[f"SubnetId.{i}"] = sid
            status, text = self.moto_call(region, "ec2", query)
            azs = set(xml_values("availabilityZone", text))
            if status == 200 and len(azs) < 2:
                return refused("DBSubnetGroupDoesNotCoverEnoughAZs",
                               "The DB subnet group doesn't meet Availability Zone (AZ) coverage requirement. "
                               f"Current AZ coverage: {', '.join(sorted(azs)) or 'none'}. "
                               "Add subnets to cover at least 2 AZs.")
        return forward()

    def on_CreateDBSubnetGroup(self, region, key, params, forward):
        return self.check_azs(region, params, forward)

    def on_ModifyDBSubnetGroup(self, region, key, params, forward):
        return self.check_azs(region, params, forward)

    def refuse_while_used(self, region, params, field, code, message, forward):
        """Refuse, as AWS does, to delete the group named by `field` while an instance uses it:
        `message(name, users)` is AWS's text for it."""
        name = params.get(field, "")
        users = self.instances_using(region, field, name)
        if users:
            return refused(code, message(name, ", ".join(users)))
        return forward()

    def on_DeleteDBSubnetGroup(self, region, key, params, forward):
        return self.refuse_while_used(
            region, params, "DBSubnetGroupName", "InvalidDBSubnetGroupStateFault",
            lambda name, users: f"Cannot delete the subnet group '{name}' because at least one database instance: "
                                f"{users} is still using it.",
            forward)

    # --- parameter groups: what moto lacks ----------------------------------------------------

    def group_key(self, region, params):
        return (region, params.get("DBParameterGroupName", ""))

    def on_CreateDBParameterGroup(self, region, key, params, forward):
        status, hdrs, out = forward()
        if status == 200:
            with self.reset_lock:
                self.reset.pop(self.group_key(region, params), None)
        return status, hdrs, out

    def too_many(self, params):
        """AWS takes at most 20 parameters in one ModifyDBParameterGroup or ResetDBParameterGroup
        (moto takes any number); the refusal is the shim's words, with AWS's code."""
        n = len(parameter_names(params))
        if n > 20:
            return refused("InvalidParameterValue",
                           f"A maximum of 20 parameters can be modified in a single request; this one has {n}.")
        return None

    def on_ModifyDBParameterGroup(self, region, key, params, forward):
        refusal = self.too_many(params)
        if refusal:
            return refusal
        status, hdrs, out = forward()
        if status == 200:
            with self.reset_lock:
                self.reset.get(self.group_key(region, params), set()).difference_update(
                    n.lower() for n in parameter_names(params))
        return status, hdrs, out

    def on_ResetDBParameterGroup(self, region, key, params, forward):
        name = params.get("DBParameterGroupName", "")
        names = {n.lower() for n in parameter_names(params)}
        # ResetAllParameters defaults to true: a call naming no parameters resets them all.
        all_of_them = params.get("ResetAllParameters", "" if names else "true").lower() == "true"
        if all_of_them and names:
            return refused("InvalidParameterCombination",
                           "Specify either ResetAllParameters or Parameters, not both.")
        refusal = self.too_many(params)
        if refusal:
            return refusal
        status, text = self.moto_call(region, "rds", {"Action": "DescribeDBParameters", "Version": "2014-10-31",
                                                       "DBParameterGroupName": name})
        if status != 200:  # DBParameterGroupNotFound, as AWS says it
            return status, [("Content-Type", "text/xml")], text.encode()
        if all_of_them:
            names = {n.lower() for n in xml_values("ParameterName", text)}
        with self.reset_lock:
            self.reset.setdefault((region, name), set()).update(names)
        return ok_xml("ResetDBParameterGroup", f"<DBParameterGroupName>{name}</DBParameterGroupName>")

    def on_DeleteDBParameterGroup(self, region, key, params, forward):
        status, hdrs, out = self.refuse_while_used(
            region, params, "DBParameterGroupName", "InvalidDBParameterGroupState",
            lambda name, users: f"One or more database instances are still members of this parameter group {name}, "
                                f"so the group cannot be deleted: {users}",
            forward)
        if status == 200:
            with self.reset_lock:
                self.reset.pop(self.group_key(region, params), None)
        return status, hdrs, out

    def on_DescribeDBParameters(self, region, key, params, forward):
        try:
            page = int(params.get("MaxRecords", "100"))
        except ValueError:
            page = 0
        if not 20 <= page <= 100:
            return refused("InvalidParameterValue",
                           f"Invalid value {params.get('MaxRecords')} for MaxRecords. Must be between 20 and 100")
        marker = params.get("Marker", "")
        if marker and not marker.isdigit():
            return refused("InvalidParameterValue", f"Invalid marker: {marker}")
        status, hdrs, out = forward()
        if status != 200:
            return status, hdrs, out
        with self.reset_lock:
            hidden = set(self.reset.get(self.group_key(region, params), ()))
        found = PARAMETER_BLOCK.findall(out.decode("utf-8"))
        if params.get("Source", "user") != "user":
            found = []  # moto keeps only what was set on the group
        blocks = []
        for block in found:
            pname = (xml_values("ParameterName", block) or [""])[0]
            if pname.lower() in hidden:
                continue
            if "<Source>" not in block:
                block += "<Source>user</Source>"
            blocks.append(f"<Parameter>{block}</Parameter>")
        start = int(marker or 0)
        shown = blocks[start:start + page]
        more = f"<Marker>{start + page}</Marker>" if start + page < len(blocks) else ""
        return ok_xml("DescribeDBParameters", f"<Parameters>{''.join(shown)}</Parameters>{more}")

    def on_DeleteSecurityGroup(self, region, key, params, forward):
        gid = params.get("GroupId", "")
        if gid:
            users = self.instances_using(region, "VpcSecurityGroupId", gid)
            _, text = self.moto_call(region, "ec2", {"Action": "DescribeSecurityGroupRules", "Version": "2016-11-15"})
            referencing = set()
            for rule in text.split("<securityGroupRuleId>")[1:]:  # one segment per rule
                owner = xml_values("groupId", rule)[:1]
                refs = re.findall(r"<referencedGroupInfo>.*?<groupId>(.*?)</groupId>", rule, re.S)
                if owner and owner[0] != gid and gid in refs:
                    referencing.add(owner[0])
            referencing = sorted(referencing)
            if users or referencing:
                what = [f"DB instance {u}" for u in users] + [f"a rule of {g}" for g in referencing]
                return refused("DependencyViolation",
                               f"resource {gid} has a dependent object ({', '.join(what)})", ec2=True)
        return forward()

    # --- actions ---------------------------------------------------------------------------------

    def new_record(self, key, region, identifier, username, dbname):
        """Reserve the instance's names and endpoint (recorded at once: a describe meanwhile
        shows the real endpoint). Names are qualified by the identifier; by identifier and region
        when another region has an instance of that identifier too."""
        port = self.backend.allocate_port(key)  # not under the lock: the endpoints' loop takes it
        with self.backend.lock:
            taken = any(r["qualifier"] == identifier for r in self.backend.instances.values())
            qualifier = f"{identifier}.{region}" if taken else identifier
            databases = {"postgres": db_name("postgres", qualifier)}
            if dbname:
                databases[dbname] = db_name(dbname, qualifier)
            rec = {"identifier": identifier, "region": region, "username": username, "qualifier": qualifier,
                   "role": role_name(username, qualifier), "databases": databases,
                   "port": port}
            self.backend.put(key, rec)
            return rec

    def on_CreateDBInstance(self, region, key, params, forward):
        if not params.get("Engine", "").startswith("postgres") or self.backend.get(key):
            return forward()
        rec = self.new_record(key, region, params.get("DBInstanceIdentifier", ""),
                              params.get("MasterUsername", "postgres"), params.get("DBName"))
        status, hdrs, out = forward()
        if status != 200:
            self.backend.forget(key)
            return status, hdrs, out
        try:
            self.backend.create(rec, password=params.get("MasterUserPassword", ""))
        except Exception as e:  # undo in moto, so that a retry creates both again
            self.backend.forget(key)
            self.forward_delete(region, rec["identifier"])
            return self.failed(f"creating the database of {key}", e)
        log(f"created {key}: role {rec['role']}, databases {sorted(rec['databases'].values())} (made on first use), "
            f"endpoint 127.0.0.1:{rec['port']}")
        return status, hdrs, out

    def forward_delete(self, region, identifier):
        body = urllib.parse.urlencode({"Action": "DeleteDBInstance", "Version": "2014-10-31",
                                       "DBInstanceIdentifier": identifier, "SkipFinalSnapshot": "true"})
        auth = f"AWS4-HMAC-SHA256 Credential=testing/20200101/{region}/rds/aws4_request, SignedHeaders=host, Signature=0"
        self.forward("POST", "/", {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}, body)

    def on_ModifyDBInstance(self, region, key, params, forward):
        status, hdrs, out = forward()
        rec = self.backend.get(key)
        if status != 200 or not rec:
            return status, hdrs, out
        if "MasterUserPassword" in params:
            try:
                self.backend.set_password(rec, params["MasterUserPassword"])
                log(f"{key}: master password changed")
            except Exception as e:
                return self.failed(f"changing the master password of {key}", e)
        new_id = params.get("NewDBInstanceIdentifier")
        if new_id and new_id != rec["identifier"]:
            log(f"{key}: renamed to {new_id} in the API; its databases keep their names")
            self.backend.forget(key)
            rec["identifier"] = new_id
            new_key = f"{region}/{new_id}"
            rec["port"] = self.backend.allocate_port(new_key)
            self.backend.put(new_key, rec)
        return status, hdrs, out

    def on_DeleteDBInstance(self, region, key, params, forward):
        status, hdrs, out = forward()
        rec = self.backend.get(key)
        if status != 200 or not rec:
            return status, hdrs, out
        try:
            snap = params.get("FinalDBSnapshotIdentifier")
            if snap and params.get("SkipFinalSnapshot", "false").lower() != "true":
                self.backend.dump(rec, region, snap)
            self.backend.drop(rec)
        except Exception as e:
            return self.failed(f"deleting the databases of {key}", e)
        self.backend.forget(key)
        log(f"deleted {key}")
        return status, hdrs, out

    def on_CreateDBSnapshot(self, region, key, params, forward):
        status, hdrs, out = forward()
        rec = self.backend.get(key)
        if status == 200 and rec:
            try:
                self.backend.dump(rec, region, params.get("DBSnapshotIdentifier", ""))
            except Exception as e:
                return self.failed(f"snapshot of {key}", e)
        return status, hdrs, out

    def on_DeleteDBSnapshot(self, region, key, params, forward):
        status, hdrs, out = forward()
        snap = params.get("DBSnapshotIdentifier", "")
        if status == 200 and snap:
            shutil.rmtree(self.backend.snapshot_dir(region, snap), ignore_errors=True)
        return status, hdrs, out

    def on_RestoreDBInstanceFromDBSnapshot(self, region, key, params, forward):
        snap = params.get("DBSnapshotIdentifier", "")
        meta_path = os.path.join(self.backend.snapshot_dir(region, snap), "snapshot.json")
        if self.backend.get(key) or not os.path.exists(meta_path):
            return forward()
        with open(meta_path) as f:
            meta = json.load(f)
        dbname = next((d for d in meta["databases"] if d != "postgres"), None)
        rec = self.new_record(key, region, params.get("DBInstanceIdentifier", ""), meta["username"], dbname)
        status, hdrs, out = forward()
        if status != 200:
            self.backend.forget(key)
            return status, hdrs, out
        try:
            self.backend.restore(rec, region, snap)
        except Exception as e:
            self.backend.forget(key)
            self.forward_delete(region, rec["identifier"])
            return self.failed(f"restoring {snap} into {key}", e)
        log(f"restored {region}/{snap} into {key}, endpoint 127.0.0.1:{rec['port']}")
        return status, hdrs, out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--moto-url", required=True)
    p.add_argument("--pg-bin", required=True)
    p.add_argument("--pg-socket", required=True, help="the server's unix socket directory")
    p.add_argument("--pg-port", type=int, required=True)
    p.add_argument("--pg-user", required=True, help="the server's superuser (trusted on the socket)")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--snapshots", required=True)
    args = p.parse_args()
    os.makedirs(args.state_dir, exist_ok=True)
    os.makedirs(args.snapshots, exist_ok=True)
    shim = Shim(args, Backend(args))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            try:
                status, hdrs, out = shim.handle(self.command, self.path, headers, body)
            except Exception as e:
                log(traceback.format_exc())
                status, hdrs, out = 502, [("Content-Type", "text/xml")], error_xml("InternalFailure", f"sandbox shim: {e}")
            self.send_response(status)
            for k, v in hdrs:
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

        def handle_error(self, request, client_address):
            if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing keep-alive
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", args.port), Handler)
    log(f"listening on 127.0.0.1:{args.port}, forwarding to {args.moto_url}, "
        f"PostgreSQL on {args.pg_socket} port {args.pg_port}")
    server.serve_forever()


if __name__ == "__main__":
    main()
