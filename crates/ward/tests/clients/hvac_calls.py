"""hvac 2.x, unchanged, doing an application's and an operator's daily calls against Ward.

Run by crates/ward/tests/hvac_client.rs with VAULT_ADDR and VAULT_TOKEN set, over TLS with
VAULT_CACERT (the server's CA) and HVAC_CERT_CA, HVAC_CLIENT_CERT and HVAC_CLIENT_KEY (a client
certificate for the cert auth method and the CA that issued it) when set; any failed assertion
or exception exits non-zero with its traceback.
"""
import base64
import os

import hvac


def b64(text):
    return base64.b64encode(text.encode()).decode()


verify = os.environ.get("VAULT_CACERT", True)
client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"], verify=verify)
assert client.is_authenticated()
assert not client.sys.is_sealed()
assert client.sys.read_health_status(method="GET")["initialized"]
assert client.sys.get_encryption_key_status()["term"] >= 1

# Secrets engines: enable, list, read, tune, disable.
client.sys.enable_secrets_engine("transit", path="hvac-transit")
client.sys.enable_secrets_engine("kv", path="hvac-kv", options={"version": "2"})
mounts = client.sys.list_mounted_secrets_engines()["data"]
assert mounts["hvac-transit/"]["type"] == "transit"
assert mounts["hvac-kv/"]["options"]["version"] == "2"
client.sys.tune_mount_configuration("hvac-kv", default_lease_ttl="1h", description="tuned")
tune = client.sys.read_mount_configuration("hvac-kv")["data"]
assert tune["default_lease_ttl"] == 3600 and tune["description"] == "tuned", tune

# KV v2.
kv = client.secrets.kv.v2
written = kv.create_or_update_secret("app/db", secret={"user": "u", "pass": "p1"}, mount_point="hvac-kv")
assert written["data"]["version"] == 1
kv.patch("app/db", secret={"pass": "p2"}, mount_point="hvac-kv")
read = kv.read_secret_version("app/db", mount_point="hvac-kv", raise_on_deleted_version=True)
assert read["data"]["data"] == {"user": "u", "pass": "p2"}, read
assert read["data"]["metadata"]["version"] == 2
assert kv.list_secrets("app", mount_point="hvac-kv")["data"]["keys"] == ["db"]
kv.update_metadata("app/db", max_versions=5, custom_metadata={"owner": "ops"}, mount_point="hvac-kv")
meta = kv.read_secret_metadata("app/db", mount_point="hvac-kv")["data"]
assert meta["max_versions"] == 5 and meta["custom_metadata"] == {"owner": "ops"}
assert meta["current_version"] == 2 and meta["oldest_version"] == 0
kv.delete_secret_versions("app/db", versions=[1], mount_point="hvac-kv")
kv.undelete_secret_versions("app/db", versions=[1], mount_point="hvac-kv")
kv.destroy_secret_versions("app/db", versions=[1], mount_point="hvac-kv")
assert kv.read_secret_metadata("app/db", mount_point="hvac-kv")["data"]["versions"]["1"]["destroyed"]
kv.delete_metadata_and_all_versions("app/db", mount_point="hvac-kv")

# Transit, RSA-OAEP included.
transit = client.secrets.transit
mount = "hvac-transit"
transit.create_key("aes", mount_point=mount)
transit.create_key("rsa", key_type="rsa-2048", mount_point=mount)
for name in ("aes", "rsa"):
    key = transit.read_key(name, mount_point=mount)["data"]
    assert key["supports_encryption"] and key["supports_decryption"], key
    ciphertext = transit.encrypt_data(name, b64("hello"), mount_point=mount)["data"]["ciphertext"]
    plain = transit.decrypt_data(name, ciphertext, mount_point=mount)["data"]["plaintext"]
    assert plain == b64("hello"), name
    transit.rotate_key(name, mount_point=mount)
    rewrapped = transit.rewrap_data(name, ciphertext, mount_point=mount)["data"]["ciphertext"]
    assert rewrapped.startswith("vault:v2:"), rewrapped
signature = transit.sign_data("rsa", b64("msg"), mount_point=mount)["data"]["signature"]
assert transit.verify_signed_data("rsa", b64("msg"), signature=signature, mount_point=mount)["data"]["valid"]
datakey = transit.generate_data_key("aes", "plaintext", mount_point=mount)["data"]
assert len(base64.b64decode(datakey["plaintext"])) == 32
assert len(base64.b64decode(transit.generate_random_bytes(n_bytes=16, mount_point=mount)["data"]["random_bytes"])) == 16
assert "hmac" in transit.generate_hmac("aes", b64("msg"), mount_point=mount)["data"]
assert sorted(transit.list_keys(mount_point=mount)["data"]["keys"]) == ["aes", "rsa"]

# Policies and tokens.
client.sys.create_or_update_policy("hvac-app", 'path "hvac-kv/data/*" { capabilities = ["read"] }')
assert "hvac-app" in client.sys.list_policies()["data"]["policies"]
assert "hvac-kv/data" in client.sys.read_policy("hvac-app")["data"]["rules"]
created = client.auth.token.create(policies=["hvac-app"], ttl="1h")["auth"]
token = created["client_token"]
looked = client.auth.token.lookup(token)["data"]
assert looked["policies"] == ["default", "hvac-app"] or looked["policies"] == ["hvac-app", "default"], looked
assert client.auth.token.lookup_accessor(created["accessor"])["data"]["accessor"] == created["accessor"]
client.auth.token.renew(token, increment="30m")
app = hvac.Client(url=os.environ["VAULT_ADDR"], token=token, verify=verify)
renewed = app.lookup_token()["data"]
# As OpenBao: the creation TTL stays, the renewal is recorded.
assert renewed["creation_ttl"] == 3600 and renewed["ttl"] <= 1800, renewed
assert renewed["display_name"] == "token-token" and "last_renewal_time" in renewed, renewed
client.auth.token.revoke(token)
assert not app.is_authenticated()

# AppRole: a role, its role ID, a secret ID (looked up by itself and by its accessor), a
# login with them, and the secret ID's end.
client.sys.enable_auth_method("approle", path="hvac-approle")
approle = client.auth.approle
approle.create_or_update_approle(
    "hvac-role", token_policies=["hvac-app"], token_ttl="1h", secret_id_num_uses=5, mount_point="hvac-approle"
)
role = approle.read_role("hvac-role", mount_point="hvac-approle")["data"]
assert role["token_policies"] == ["hvac-app"] and role["token_ttl"] == 3600 and role["bind_secret_id"], role
assert approle.list_roles(mount_point="hvac-approle")["data"]["keys"] == ["hvac-role"]
role_id = approle.read_role_id("hvac-role", mount_point="hvac-approle")["data"]["role_id"]
generated = approle.generate_secret_id("hvac-role", metadata={"app": "web"}, mount_point="hvac-approle")["data"]
secret_id, secret_accessor = generated["secret_id"], generated["secret_id_accessor"]
assert generated["secret_id_num_uses"] == 5, generated
listed = approle.list_secret_id_accessors("hvac-role", mount_point="hvac-approle")["data"]["keys"]
assert listed == [secret_accessor], listed
login = approle.login(role_id, secret_id, use_token=False, mount_point="hvac-approle")["auth"]
assert login["metadata"] == {"app": "web", "role_name": "hvac-role"}, login
assert "hvac-app" in login["policies"] and login["lease_duration"] == 3600, login
by_secret = approle.read_secret_id("hvac-role", secret_id, mount_point="hvac-approle")["data"]
assert by_secret["secret_id_num_uses"] == 4, by_secret
by_accessor = approle.read_secret_id_accessor("hvac-role", secret_accessor, mount_point="hvac-approle")["data"]
assert by_accessor["metadata"] == {"app": "web"} and "secret_id" not in by_accessor, by_accessor
approle.destroy_secret_id_accessor("hvac-role", secret_accessor, mount_point="hvac-approle")
other = approle.generate_secret_id("hvac-role", mount_point="hvac-approle")["data"]["secret_id"]
approle.destroy_secret_id("hvac-role", other, mount_point="hvac-approle")
for spent in (secret_id, other):
    try:
        approle.login(role_id, spent, use_token=False, mount_point="hvac-approle")
        raise AssertionError("a destroyed secret ID logged in")
    except hvac.exceptions.InvalidRequest:
        pass
approle.delete_role("hvac-role", mount_point="hvac-approle")
client.sys.disable_auth_method("hvac-approle")

# Auth methods and userpass.
client.sys.enable_auth_method("userpass", path="hvac-up", description="people")
methods = client.sys.list_auth_methods()["data"]
assert methods["hvac-up/"]["type"] == "userpass" and methods["hvac-up/"]["description"] == "people", methods
client.sys.tune_auth_method("hvac-up", default_lease_ttl="1h")
assert client.sys.read_auth_method_tuning("hvac-up")["data"]["default_lease_ttl"] == 3600
userpass = client.auth.userpass
userpass.create_or_update_user("alice", "pw-1", policies=["hvac-app"], mount_point="hvac-up")
assert userpass.list_user(mount_point="hvac-up")["data"]["keys"] == ["alice"]
assert "hvac-app" in userpass.read_user("alice", mount_point="hvac-up")["data"]["token_policies"]
userpass.update_password_on_user("alice", "pw-2", mount_point="hvac-up")
person = hvac.Client(url=os.environ["VAULT_ADDR"], verify=verify)
logged_in = person.auth.userpass.login("alice", "pw-2", mount_point="hvac-up")["auth"]
assert logged_in["metadata"] == {"username": "alice"} and logged_in["lease_duration"] == 3600, logged_in
assert person.is_authenticated() and person.token == logged_in["client_token"]
try:
    hvac.Client(url=os.environ["VAULT_ADDR"], verify=verify).auth.userpass.login("alice", "pw-1", mount_point="hvac-up")
    raise AssertionError("an old password logged in")
except hvac.exceptions.InvalidRequest as error:
    assert "invalid username or password" in str(error), error
userpass.delete_user("alice", mount_point="hvac-up")
client.sys.disable_auth_method("hvac-up")
assert not person.is_authenticated()

# The cert auth method: a login with a client certificate from the CA a role trusts.
if "HVAC_CLIENT_CERT" in os.environ:
    client.sys.enable_auth_method("cert", path="hvac-cert")
    with open(os.environ["HVAC_CERT_CA"]) as ca:
        client.write("auth/hvac-cert/certs/app", certificate=ca.read(), token_policies="hvac-app")
    assert client.read("auth/hvac-cert/certs/app")["data"]["token_policies"] == ["hvac-app"]
    by_cert = hvac.Client(url=os.environ["VAULT_ADDR"], verify=verify)
    login = by_cert.auth.cert.login(
        cert_pem=os.environ["HVAC_CLIENT_CERT"],
        key_pem=os.environ["HVAC_CLIENT_KEY"],
        mount_point="hvac-cert",
    )["auth"]
    assert login["metadata"]["cert_name"] == "app", login
    assert by_cert.is_authenticated()
    assert "hvac-app" in by_cert.lookup_token()["data"]["policies"]
    client.sys.disable_auth_method("hvac-cert")

client.sys.disable_secrets_engine("hvac-kv")
client.sys.disable_secrets_engine("hvac-transit")
print("hvac: all calls passed")
