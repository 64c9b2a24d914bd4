/*  nf_curve: see nf_curve.h. */
#include "nf_curve.h"
#include "nf_log.h"
#include "nf_util.h"

#include <dirent.h>
#include <sys/stat.h>

#define ZAP_ENDPOINT   "inproc://zeromq.zap.01"
#define REFUSAL_LOG_MS 60000 /* one log line a minute per refused key */

/* The role folders under NF_CURVE_ALLOW, by nf_role_t; the ZAP domain of
   each broker socket and the roles it admits. */
static const char *const s_role_folders[] = {"", "workers", "operators", "viewers"};
static const char *const s_role_names[] = {"", "worker", "operator", "viewer"};
static const struct {
    const char *domain;
    nf_role_t admits[2];
} s_sockets[] = {
    [NF_SOCKET_WORKERS] = {"nicheflow-workers", {NF_ROLE_WORKER, NF_ROLE_NONE}},
    [NF_SOCKET_CLIENTS] = {"nicheflow-clients", {NF_ROLE_OPERATOR, NF_ROLE_VIEWER}},
    [NF_SOCKET_EVENTS] = {"nicheflow-events", {NF_ROLE_OPERATOR, NF_ROLE_VIEWER}},
};

struct nf_curve_t {
    zcert_t *cert;            /* our key pair */
    char broker_key[41];      /* the broker's public key (workers, clients) */
    zsock_t *zap;             /* REP on ZAP_ENDPOINT (broker) */
    zcertstore_t *allowed[4]; /* public keys admitted, by role (broker) */
    char last_refused[41];    /* rate limit of the refusal log */
    int64_t last_refused_ms;  /* when it was logged */
    uint64_t admitted;        /* handshakes admitted */
    uint64_t refused;         /* handshakes refused */
};

static const char *s_zero_key = "0000000000000000000000000000000000000000";

/* Load PATH; NEED_SECRET: it must hold the secret key too. */
static zcert_t *
s_load (const char *setting, const char *path, bool need_secret, char *err, size_t errlen)
{
    if (!zsys_file_exists (path)) {
        snprintf (err, errlen, "%s: no certificate file '%s'", setting, path);
        return NULL;
    }
    zcert_t *cert = zcert_load (path);
    if (!cert || streq (zcert_public_txt (cert), s_zero_key)) {
        snprintf (err, errlen, "%s: '%s' is not a certificate (make one with nf-keygen)", setting,
                  path);
        zcert_destroy (&cert);
        return NULL;
    }
    if (need_secret && streq (zcert_secret_txt (cert), s_zero_key)) {
        snprintf (err, errlen,
                  "%s: '%s' holds no secret key; give the NAME.cert_secret file nf-keygen wrote",
                  setting, path);
        zcert_destroy (&cert);
        return NULL;
    }
    return cert;
}

/* The allow folder DIR: a folder per role, and no certificate at its top
   (the layout before roles: refused, so that no key keeps more rights
   than it is given). */
static nf_err_t
s_allow_folders (nf_curve_t *self, const char *dir, char *err, size_t errlen)
{
    struct stat st;
    if (stat (dir, &st) != 0 || !S_ISDIR (st.st_mode)) {
        snprintf (err, errlen, "NF_CURVE_ALLOW: '%s' is not a folder", dir);
        return NF_ERR_INVALID;
    }
    size_t loose = 0;
    DIR *top = opendir (dir);
    for (struct dirent *de = top ? readdir (top) : NULL; de; de = readdir (top)) {
        size_t n = strlen (de->d_name);
        loose += n > 5 && strcmp (de->d_name + n - 5, ".cert") == 0;
    }
    if (top)
        closedir (top);
    if (loose) {
        snprintf (err, errlen,
                  "NF_CURVE_ALLOW: '%s' holds %zu certificate(s) at its top; a key's role is the "
                  "folder it is in: move each into %s/workers, %s/operators or %s/viewers "
                  "(nf-keygen --role, deploy/README.md)",
                  dir, loose, dir, dir, dir);
        return NF_ERR_INVALID;
    }
    for (int r = NF_ROLE_WORKER; r <= NF_ROLE_VIEWER; r++) {
        char path[4096];
        snprintf (path, sizeof path, "%s/%s", dir, s_role_folders[r]);
        if (stat (path, &st) != 0 || !S_ISDIR (st.st_mode)) {
            snprintf (err, errlen,
                      "NF_CURVE_ALLOW: '%s' has no folder %s/ (it needs workers/, operators/ "
                      "and viewers/, empty where a role has no key)",
                      dir, s_role_folders[r]);
            return NF_ERR_INVALID;
        }
        self->allowed[r] = zcertstore_new (path);
        if (!self->allowed[r]) {
            snprintf (err, errlen, "NF_CURVE_ALLOW: cannot read '%s'", path);
            return NF_ERR_INVALID;
        }
    }
    return NF_OK;
}

nf_role_t
nf_curve_role (const char *user_id)
{
    for (int r = NF_ROLE_WORKER; user_id && r <= NF_ROLE_VIEWER; r++) {
        size_t n = strlen (s_role_names[r]);
        if (strncmp (user_id, s_role_names[r], n) == 0 && user_id[n] == ':')
            return (nf_role_t) r;
    }
    return NF_ROLE_NONE;
}

const char *
nf_role_name (nf_role_t role)
{
    return role >= NF_ROLE_WORKER && role <= NF_ROLE_VIEWER ? s_role_names[role] : "none";
}

nf_err_t
nf_curve_new (nf_config_t *config, int program, nf_curve_t **curve_p, char *err, size_t errlen)
{
    *curve_p = NULL;
    const char *own = nf_config_str (config, NF_CFG_CURVE_CERT);
    bool broker = program == NF_PROG_BROKER;
    const char *peer =
        nf_config_str (config, broker ? NF_CFG_CURVE_ALLOW : NF_CFG_CURVE_BROKER_CERT);
    const char *peer_env = broker ? "NF_CURVE_ALLOW" : "NF_CURVE_BROKER_CERT";
    if (!*own && !*peer)
        return NF_OK;
    if (!*own || !*peer) {
        snprintf (err, errlen, "CURVE needs both NF_CURVE_CERT and %s (%s is set)", peer_env,
                  *own ? "NF_CURVE_CERT" : peer_env);
        return NF_ERR_INVALID;
    }
    if (!zsys_has_curve ()) {
        snprintf (err, errlen, "NF_CURVE_CERT is set but this libzmq has no CURVE support");
        return NF_ERR_INVALID;
    }
    nf_curve_t *self = calloc (1, sizeof *self);
    if (!self)
        return NF_ERR_INVALID;
    self->cert = s_load ("NF_CURVE_CERT", own, true, err, errlen);
    if (!self->cert)
        goto fail;
    if (broker) {
        if (s_allow_folders (self, peer, err, errlen) != NF_OK)
            goto fail;
        self->zap = zsock_new (ZMQ_REP);
        if (!self->zap || zsock_bind (self->zap, ZAP_ENDPOINT) != 0) {
            snprintf (err, errlen, "cannot start the ZAP handler: %s", zmq_strerror (zmq_errno ()));
            goto fail;
        }
    }
    else {
        zcert_t *bc = s_load ("NF_CURVE_BROKER_CERT", peer, false, err, errlen);
        if (!bc)
            goto fail;
        snprintf (self->broker_key, sizeof self->broker_key, "%s", zcert_public_txt (bc));
        zcert_destroy (&bc);
    }
    *curve_p = self;
    return NF_OK;
fail:
    nf_curve_destroy (&self);
    return NF_ERR_INVALID;
}

void
nf_curve_destroy (nf_curve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_curve_t *self = *self_p;
    zsock_destroy (&self->zap);
    for (int r = 0; r < 4; r++)
        zcertstore_destroy (&self->allowed[r]);
    zcert_destroy (&self->cert);
    free (self);
    *self_p = NULL;
}

void
nf_curve_client (const nf_curve_t *self, zsock_t *sock)
{
    if (!self)
        return;
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, self->broker_key);
}

void
nf_curve_server (const nf_curve_t *self, zsock_t *sock, nf_socket_kind_t kind)
{
    if (!self)
        return;
    zcert_apply (self->cert, sock);
    zsock_set_curve_server (sock, 1);
    zsock_set_zap_domain (sock, s_sockets[kind].domain);
}

zsock_t *
nf_curve_watch (const nf_curve_t *self, zsock_t *sock)
{
    static int s_sequence = 0; /* unique inproc names within the process */
    if (!self || !sock)
        return NULL;
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "inproc://nf-curve-watch-%d",
              __atomic_add_fetch (&s_sequence, 1, __ATOMIC_RELAXED));
    if (zmq_socket_monitor (zsock_resolve (sock), endpoint,
                            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                                | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        != 0)
        return NULL;
    zsock_t *watch = zsock_new (ZMQ_PAIR);
    if (watch && zsock_connect (watch, "%s", endpoint) != 0)
        zsock_destroy (&watch);
    return watch;
}

void
nf_curve_unwatch (zsock_t *sock, zsock_t **watch_p)
{
    if (!*watch_p)
        return;
    if (sock)
        zmq_socket_monitor (zsock_resolve (sock), NULL, 0);
    zsock_destroy (watch_p);
}

const char *
nf_curve_failure (zsock_t *watch)
{
    const char *why = NULL;
    while (watch && (zsock_events (watch) & ZMQ_POLLIN)) {
        zmsg_t *event = zmsg_recv (watch);
        zframe_t *head = event ? zmsg_first (event) : NULL;
        if (head && zframe_size (head) == 6) {
            uint16_t id;
            memcpy (&id, zframe_data (head), 2);
            if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
                why = "the broker refused this program's CURVE key (its .cert is not in the "
                      "broker's NF_CURVE_ALLOW folder of a role this socket admits: workers/ "
                      "for a worker, operators/ or viewers/ for a client)";
            else
                why = "the CURVE handshake with the broker failed (a wrong "
                      "NF_CURVE_BROKER_CERT, or the broker runs without CURVE)";
        }
        zmsg_destroy (&event);
    }
    return why;
}

const char *
nf_curve_public (const nf_curve_t *self)
{
    return self ? zcert_public_txt (self->cert) : "";
}

zsock_t *
nf_curve_zap_socket (nf_curve_t *self)
{
    return self ? self->zap : NULL;
}

uint64_t
nf_curve_admitted (const nf_curve_t *self)
{
    return self ? self->admitted : 0;
}

uint64_t
nf_curve_refused (const nf_curve_t *self)
{
    return self ? self->refused : 0;
}

/* RFC 27: version, request id, domain, address, identity, mechanism, then
   the credentials (for CURVE: the client's 32-byte public key). Answers
   200 with the certificate's name as user id, or 400. */
void
nf_curve_zap_handle (nf_curve_t *self)
{
    if (!self || !self->zap)
        return;
    zmsg_t *request = zmsg_recv (self->zap);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    char *sequence = zmsg_popstr (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *key = zmsg_pop (request);
    char key_txt[41] = "";
    const char *status = "400", *text = "no CURVE credentials";
    char user[160] = "";
    int sock = -1;
    for (size_t s = 0; domain && s < sizeof s_sockets / sizeof s_sockets[0]; s++)
        if (streq (domain, s_sockets[s].domain))
            sock = (int) s;
    if (sock < 0)
        text = "unknown ZAP domain";
    else if (mechanism && streq (mechanism, "CURVE") && key && zframe_size (key) == 32) {
        zmq_z85_encode (key_txt, zframe_data (key), 32);
        text = sock == NF_SOCKET_WORKERS ? "key not in NF_CURVE_ALLOW/workers"
                                         : "key not in NF_CURVE_ALLOW/operators or /viewers";
        for (int a = 0; a < 2 && *status == '4'; a++) {
            nf_role_t role = s_sockets[sock].admits[a];
            zcert_t *cert = role ? zcertstore_lookup (self->allowed[role], key_txt) : NULL;
            if (!cert)
                continue;
            const char *name = zcert_meta (cert, "name");
            snprintf (user, sizeof user, "%s:%.100s", s_role_names[role], name ? name : key_txt);
            status = "200";
            text = "OK";
        }
    }
    if (*status == '2') {
        self->admitted++;
        nf_debug ("CURVE: admitted '%s' from %s", user, address ? address : "?");
    }
    else {
        self->refused++;
        int64_t now = nf_clock_ms ();
        if (!streq (key_txt, self->last_refused) || now - self->last_refused_ms >= REFUSAL_LOG_MS) {
            nf_warn ("CURVE: refused a peer from %s: %s%s%s", address ? address : "?", text,
                     *key_txt ? ", key " : "", key_txt);
            snprintf (self->last_refused, sizeof self->last_refused, "%s", key_txt);
            self->last_refused_ms = now;
        }
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, sequence ? sequence : "");
    zmsg_addstr (reply, status);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, user);
    zmsg_addmem (reply, "", 0);
    zmsg_send (&reply, self->zap);
    zframe_destroy (&key);
    zstr_free (&version);
    zstr_free (&sequence);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&identity);
    zstr_free (&mechanism);
    zmsg_destroy (&request);
}
