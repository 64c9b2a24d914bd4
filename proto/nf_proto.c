/*  nf_proto: see nf_proto.h and proto/README.md. */
#include "nf_proto.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nf_msg_t {
    char *bytes;               /* a copy of the body: msgpack-c's objects point into it */
    msgpack_unpacked unpacked; /* the decoded tree (zone-owned objects) */
    char **strings;            /* NUL-terminated copies handed out by decoders */
    size_t nstrings;           /* entries used in strings */
};

#define ERR(...) (snprintf (err, errlen, __VA_ARGS__), NF_ERR_PROTO)

/* ---- structural check -------------------------------------------------- */

typedef struct {
    const uint8_t *p; /* the bytes */
    size_t len;       /* their count */
    size_t pos;       /* read position */
    size_t elements;  /* values seen so far */
    size_t max;       /* values allowed: proportional to LEN */
} s_scan_t;

static int
s_need (s_scan_t *s, size_t n)
{
    return s->len - s->pos >= n ? 0 : -1;
}

static uint64_t
s_be (const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static int
s_scan (s_scan_t *s, int depth, char *err, size_t errlen)
{
    if (depth > NF_PROTO_MAX_DEPTH)
        return ERR ("nesting deeper than %d", NF_PROTO_MAX_DEPTH);
    if (++s->elements > s->max)
        return ERR ("more than %zu values in a body of %zu bytes (at most one per %d bytes)",
                    s->max, s->len, NF_PROTO_BYTES_PER_VALUE);
    if (s_need (s, 1))
        return ERR ("truncated at byte %zu", s->pos);
    uint8_t c = s->p[s->pos++];
    uint64_t skip = 0, items = 0;
    int lenbytes = 0;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
        return 0;
    if ((c & 0xf0) == 0x80)
        items = 2 * (uint64_t) (c & 0x0f);
    else if ((c & 0xf0) == 0x90)
        items = c & 0x0f;
    else if ((c & 0xe0) == 0xa0)
        skip = c & 0x1f;
    else
        switch (c) {
        case 0xc4:
        case 0xd9: lenbytes = 1; break;
        case 0xc5:
        case 0xda: lenbytes = 2; break;
        case 0xc6:
        case 0xdb: lenbytes = 4; break;
        case 0xca: skip = 4; break;
        case 0xcb: skip = 8; break;
        case 0xcc:
        case 0xd0: skip = 1; break;
        case 0xcd:
        case 0xd1: skip = 2; break;
        case 0xce:
        case 0xd2: skip = 4; break;
        case 0xcf:
        case 0xd3: skip = 8; break;
        case 0xdc:
        case 0xde:
            if (s_need (s, 2))
                return ERR ("truncated container header at byte %zu", s->pos);
            items = s_be (s->p + s->pos, 2) * (c == 0xde ? 2 : 1);
            s->pos += 2;
            break;
        case 0xdd:
        case 0xdf:
            if (s_need (s, 4))
                return ERR ("truncated container header at byte %zu", s->pos);
            items = s_be (s->p + s->pos, 4) * (c == 0xdf ? 2 : 1);
            s->pos += 4;
            break;
        case 0xc1: return ERR ("reserved byte 0xc1 at %zu", s->pos - 1);
        default: return ERR ("msgpack ext type 0x%02x at byte %zu is not allowed", c, s->pos - 1);
        }
    if (lenbytes) {
        if (s_need (s, (size_t) lenbytes))
            return ERR ("truncated length at byte %zu", s->pos);
        skip = s_be (s->p + s->pos, lenbytes);
        s->pos += (size_t) lenbytes;
    }
    if (skip) {
        if (skip > s->len - s->pos)
            return ERR ("value of %llu bytes at %zu runs past the end", (unsigned long long) skip,
                        s->pos);
        s->pos += (size_t) skip;
        return 0;
    }
    if (items > s->len - s->pos)
        return ERR ("container claims %llu values but only %zu bytes remain",
                    (unsigned long long) items, s->len - s->pos);
    for (uint64_t i = 0; i < items; i++)
        if (s_scan (s, depth + 1, err, errlen) != 0)
            return -1;
    return 0;
}

nf_err_t
nf_mp_check (const void *data, size_t len, char *err, size_t errlen)
{
    size_t max = len / NF_PROTO_BYTES_PER_VALUE;
    s_scan_t s = {data, len, 0, 0, max > NF_PROTO_MIN_VALUES ? max : NF_PROTO_MIN_VALUES};
    if (len == 0)
        return ERR ("empty body");
    if (s_scan (&s, 0, err, errlen) != 0)
        return NF_ERR_PROTO;
    if (s.pos != len)
        return ERR ("%zu trailing bytes after the value", len - s.pos);
    return NF_OK;
}

/* ---- decoding ------------------------------------------------------------ */

nf_msg_t *
nf_msg_decode (const void *data, size_t len, size_t max, char *err, size_t errlen)
{
    if (len > max) {
        snprintf (err, errlen, "body of %zu bytes exceeds the limit of %zu", len, max);
        return NULL;
    }
    if (nf_mp_check (data, len, err, errlen) != 0)
        return NULL;
    nf_msg_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    msgpack_unpacked_init (&self->unpacked);
    self->bytes = malloc (len);
    if (!self->bytes) {
        snprintf (err, errlen, "out of memory");
        nf_msg_destroy (&self);
        return NULL;
    }
    memcpy (self->bytes, data, len);
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (&self->unpacked, self->bytes, len, &off);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != len) {
        snprintf (err, errlen, "msgpack decode failed (%d)", (int) rc);
        nf_msg_destroy (&self);
        return NULL;
    }
    if (self->unpacked.data.type != MSGPACK_OBJECT_MAP) {
        snprintf (err, errlen, "body is not a map");
        nf_msg_destroy (&self);
        return NULL;
    }
    return self;
}

void
nf_msg_destroy (nf_msg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nf_msg_t *self = *self_p;
    msgpack_unpacked_destroy (&self->unpacked);
    free (self->bytes);
    for (size_t i = 0; i < self->nstrings; i++)
        free (self->strings[i]);
    free (self->strings);
    free (self);
    *self_p = NULL;
}

const msgpack_object *
nf_msg_root (nf_msg_t *self)
{
    return &self->unpacked.data;
}

bool
nf_mp_is_str (const msgpack_object *o, const char *text)
{
    size_t n = strlen (text);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n
           && memcmp (o->via.str.ptr, text, n) == 0;
}

const msgpack_object *
nf_mp_get (const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (nf_mp_is_str (&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

bool
nf_mp_get_str (const msgpack_object *map, const char *key, const char **str, size_t *len)
{
    const msgpack_object *o = nf_mp_get (map, key);
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return false;
    *str = o->via.str.ptr;
    *len = o->via.str.size;
    return true;
}

char *
nf_mp_dup_str (const msgpack_object *map, const char *key)
{
    const char *s;
    size_t n;
    if (!nf_mp_get_str (map, key, &s, &n))
        return NULL;
    char *copy = malloc (n + 1);
    if (!copy)
        return NULL;
    memcpy (copy, s, n);
    copy[n] = 0;
    return copy;
}

bool
nf_mp_get_int (const msgpack_object *map, const char *key, int64_t *value)
{
    const msgpack_object *o = nf_mp_get (map, key);
    if (!o)
        return false;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *value = (int64_t) o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *value = o->via.i64;
        return true;
    }
    return false;
}

bool
nf_mp_get_num (const msgpack_object *map, const char *key, double *value)
{
    const msgpack_object *o = nf_mp_get (map, key);
    if (!o)
        return false;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *value = (double) o->via.u64; return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *value = (double) o->via.i64; return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *value = o->via.f64; return isfinite (*value);
    default: return false;
    }
}

bool
nf_mp_get_bool (const msgpack_object *map, const char *key, bool *value)
{
    const msgpack_object *o = nf_mp_get (map, key);
    if (!o || o->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    *value = o->via.boolean;
    return true;
}

/* A NUL-terminated copy of string field KEY kept by MSG; NULL if absent,
   not a string, empty when EMPTY_OK is false, or containing a NUL byte. */
static const char *
s_keep_str (nf_msg_t *msg, const msgpack_object *map, const char *key, bool empty_ok)
{
    const char *s;
    size_t n;
    if (!nf_mp_get_str (map, key, &s, &n) || (!empty_ok && n == 0) || memchr (s, 0, n))
        return NULL;
    char **grown = realloc (msg->strings, (msg->nstrings + 1) * sizeof (char *));
    if (!grown)
        return NULL;
    msg->strings = grown;
    char *copy = malloc (n + 1);
    if (!copy)
        return NULL;
    memcpy (copy, s, n);
    copy[n] = 0;
    msg->strings[msg->nstrings++] = copy;
    return copy;
}

static int
s_check_version (const msgpack_object *root, char *err, size_t errlen)
{
    int64_t v;
    if (!nf_mp_get_int (root, "v", &v))
        return ERR ("field 'v' (protocol version) missing or not an integer");
    if (v != NF_PROTO_VERSION)
        return ERR ("protocol version %lld not supported (this side speaks %d)", (long long) v,
                    NF_PROTO_VERSION);
    return 0;
}

nf_err_t
nf_task_decode (nf_msg_t *msg, nf_task_t *task, char *err, size_t errlen)
{
    const msgpack_object *root = nf_msg_root (msg);
    memset (task, 0, sizeof *task);
    if (s_check_version (root, err, errlen) != 0)
        return NF_ERR_PROTO;
    if (!(task->service = s_keep_str (msg, root, "service", false)))
        return ERR ("field 'service' missing or not a non-empty string");
    if (!(task->token = s_keep_str (msg, root, "token", false)))
        return ERR ("field 'token' missing or not a non-empty string");
    if (!nf_mp_get_int (root, "job_id", &task->job_id) || task->job_id <= 0)
        return ERR ("field 'job_id' missing or not a positive integer");
    const msgpack_object *vid = nf_mp_get (root, "video_id");
    if (vid && vid->type != MSGPACK_OBJECT_NIL
        && !(task->video_id = s_keep_str (msg, root, "video_id", false)))
        return ERR ("field 'video_id' must be a non-empty string or nil");
    if (!nf_mp_get_int (root, "attempt", &task->attempt) || task->attempt < 1)
        return ERR ("field 'attempt' missing or not a positive integer");
    task->job = nf_mp_get (root, "job");
    if (!task->job || task->job->type != MSGPACK_OBJECT_MAP)
        return ERR ("field 'job' missing or not a map");
    task->input = nf_mp_get (root, "input");
    if (!task->input || task->input->type != MSGPACK_OBJECT_MAP)
        return ERR ("field 'input' missing or not a map");
    return NF_OK;
}

static const char *s_status_names[] = {"ok", "reject", "error"};

const char *
nf_reply_status_name (nf_reply_status_t status)
{
    return s_status_names[status];
}

nf_err_t
nf_reply_decode (nf_msg_t *msg, nf_reply_t *reply, char *err, size_t errlen)
{
    const msgpack_object *root = nf_msg_root (msg);
    memset (reply, 0, sizeof *reply);
    reply->retryable = true;
    if (s_check_version (root, err, errlen) != 0)
        return NF_ERR_PROTO;
    if (!(reply->token = s_keep_str (msg, root, "token", false)))
        return ERR ("field 'token' missing or not a non-empty string");
    const msgpack_object *status = nf_mp_get (root, "status");
    int found = -1;
    for (int i = 0; i < 3; i++)
        if (nf_mp_is_str (status, s_status_names[i]))
            found = i;
    if (found < 0)
        return ERR ("field 'status' must be \"ok\", \"reject\" or \"error\"");
    reply->status = (nf_reply_status_t) found;
    reply->output = nf_mp_get (root, "output");
    if (reply->output && reply->output->type == MSGPACK_OBJECT_NIL)
        reply->output = NULL;
    if (reply->output && reply->output->type != MSGPACK_OBJECT_MAP)
        return ERR ("field 'output' must be a map");
    reply->usage = nf_mp_get (root, "usage");
    if (reply->usage && reply->usage->type == MSGPACK_OBJECT_NIL)
        reply->usage = NULL;
    if (reply->usage && reply->usage->type != MSGPACK_OBJECT_MAP)
        return ERR ("field 'usage' must be a map");
    if (reply->status == NF_REPLY_REJECT
        && !(reply->reason = s_keep_str (msg, root, "reason", false)))
        return ERR ("a reject needs a non-empty string 'reason'");
    if (reply->status == NF_REPLY_ERROR) {
        if (!(reply->error = s_keep_str (msg, root, "error", true)))
            return ERR ("an error needs a string 'error'");
        const msgpack_object *r = nf_mp_get (root, "retryable");
        if (r && r->type != MSGPACK_OBJECT_BOOLEAN)
            return ERR ("field 'retryable' must be a boolean");
        if (r)
            reply->retryable = r->via.boolean;
    }
    return NF_OK;
}

/* ---- packing -------------------------------------------------------------- */

void
nf_pk_strn (msgpack_packer *pk, const char *text, size_t len)
{
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, text, len);
}

void
nf_pk_str (msgpack_packer *pk, const char *text)
{
    nf_pk_strn (pk, text, strlen (text));
}

void
nf_pk_kv_str (msgpack_packer *pk, const char *key, const char *value)
{
    nf_pk_str (pk, key);
    if (value)
        nf_pk_str (pk, value);
    else
        msgpack_pack_nil (pk);
}

void
nf_pk_kv_int (msgpack_packer *pk, const char *key, int64_t value)
{
    nf_pk_str (pk, key);
    msgpack_pack_int64 (pk, value);
}

void
nf_pk_kv_bool (msgpack_packer *pk, const char *key, bool value)
{
    nf_pk_str (pk, key);
    if (value)
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
}

void
nf_pk_kv_nil (msgpack_packer *pk, const char *key)
{
    nf_pk_str (pk, key);
    msgpack_pack_nil (pk);
}

static int
s_buf_write (void *data, const char *buf, size_t len)
{
    nf_buf_append ((nf_buf_t *) data, buf, len);
    return 0;
}

void
nf_pk_init_buf (msgpack_packer *pk, nf_buf_t *buf)
{
    msgpack_packer_init (pk, buf, s_buf_write);
}

void
nf_client_error_encode (nf_buf_t *out, const char *text)
{
    msgpack_packer pk;
    nf_pk_init_buf (&pk, out);
    msgpack_pack_map (&pk, 3);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_bool (&pk, "ok", false);
    nf_pk_kv_str (&pk, "error", text);
}

void
nf_client_request_int (nf_buf_t *out, const char *key, int64_t value)
{
    msgpack_packer pk;
    nf_pk_init_buf (&pk, out);
    msgpack_pack_map (&pk, 2);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_int (&pk, key, value);
}

void
nf_reply_encode (nf_buf_t *out, const char *token, nf_reply_status_t status,
                 const char *reason_or_error, bool retryable, const void *output, size_t output_len,
                 const void *usage, size_t usage_len)
{
    msgpack_packer pk;
    nf_pk_init_buf (&pk, out);
    int n = 3 + (output ? 1 : 0) + (usage ? 1 : 0) + (status == NF_REPLY_OK ? 0 : 1)
            + (status == NF_REPLY_ERROR ? 1 : 0);
    msgpack_pack_map (&pk, (size_t) n);
    nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
    nf_pk_kv_str (&pk, "token", token);
    nf_pk_kv_str (&pk, "status", s_status_names[status]);
    if (status == NF_REPLY_REJECT)
        nf_pk_kv_str (&pk, "reason", reason_or_error ? reason_or_error : "rejected");
    if (status == NF_REPLY_ERROR) {
        nf_pk_kv_str (&pk, "error", reason_or_error ? reason_or_error : "");
        nf_pk_kv_bool (&pk, "retryable", retryable);
    }
    if (output) {
        nf_pk_str (&pk, "output");
        nf_buf_append (out, output, output_len);
    }
    if (usage) {
        nf_pk_str (&pk, "usage");
        nf_buf_append (out, usage, usage_len);
    }
}

/* ---- JSON conversion ------------------------------------------------------ */

nf_err_t
nf_mp_to_json (const msgpack_object *o, nf_buf_t *out, char *err, size_t errlen)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: nf_buf_puts (out, "null"); return NF_OK;
    case MSGPACK_OBJECT_BOOLEAN: nf_buf_puts (out, o->via.boolean ? "true" : "false"); return NF_OK;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        /* Past 2^63-1 neither jansson nor a 64-bit column reads it back. */
        if (o->via.u64 > INT64_MAX)
            return ERR ("integer above 2^63-1");
        nf_buf_printf (out, "%llu", (unsigned long long) o->via.u64);
        return NF_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        nf_buf_printf (out, "%lld", (long long) o->via.i64);
        return NF_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isfinite (o->via.f64))
            nf_buf_printf (out, "%.17g", o->via.f64);
        else
            nf_buf_puts (out, "null");
        return NF_OK;
    case MSGPACK_OBJECT_STR: nf_buf_json_str (out, o->via.str.ptr, o->via.str.size); return NF_OK;
    case MSGPACK_OBJECT_ARRAY:
        nf_buf_puts (out, "[");
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                nf_buf_puts (out, ",");
            if (nf_mp_to_json (&o->via.array.ptr[i], out, err, errlen) != 0)
                return NF_ERR_PROTO;
        }
        nf_buf_puts (out, "]");
        return NF_OK;
    case MSGPACK_OBJECT_MAP:
        nf_buf_puts (out, "{");
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR)
                return ERR ("map key of a non-string type");
            if (i)
                nf_buf_puts (out, ",");
            nf_buf_json_str (out, k->via.str.ptr, k->via.str.size);
            nf_buf_puts (out, ":");
            if (nf_mp_to_json (&o->via.map.ptr[i].val, out, err, errlen) != 0)
                return NF_ERR_PROTO;
        }
        nf_buf_puts (out, "}");
        return NF_OK;
    default: return ERR ("binary or extension value where JSON was expected");
    }
}

json_t *
nf_mp_get_json (const msgpack_object *map, const char *key)
{
    const msgpack_object *o = nf_mp_get (map, key);
    nf_buf_t b;
    nf_buf_init (&b);
    char err[64];
    json_t *j = NULL;
    if (o && nf_mp_to_json (o, &b, err, sizeof err) == 0)
        j = json_loadb (b.data, b.len, JSON_DECODE_ANY, NULL);
    nf_buf_free (&b);
    return j;
}

static void
s_pack_json (const json_t *j, msgpack_packer *pk)
{
    switch (json_typeof (j)) {
    case JSON_OBJECT: {
        msgpack_pack_map (pk, json_object_size (j));
        for (void *it = json_object_iter ((json_t *) j); it;
             it = json_object_iter_next ((json_t *) j, it)) {
            nf_pk_str (pk, json_object_iter_key (it));
            s_pack_json (json_object_iter_value (it), pk);
        }
        break;
    }
    case JSON_ARRAY: {
        msgpack_pack_array (pk, json_array_size (j));
        for (size_t i = 0; i < json_array_size (j); i++)
            s_pack_json (json_array_get (j, i), pk);
        break;
    }
    case JSON_STRING: nf_pk_strn (pk, json_string_value (j), json_string_length (j)); break;
    case JSON_INTEGER: msgpack_pack_int64 (pk, json_integer_value (j)); break;
    case JSON_REAL: msgpack_pack_double (pk, json_real_value (j)); break;
    case JSON_TRUE: msgpack_pack_true (pk); break;
    case JSON_FALSE: msgpack_pack_false (pk); break;
    default: msgpack_pack_nil (pk);
    }
}

static json_t *
s_load (const char *json, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb (json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    /* PostgreSQL writes a jsonb number such as 1.5e20 as a 21-digit
       integer, which jansson refuses: read such a document with its
       numbers as reals, so each keeps its value. */
    if (!root && json_error_code (&jerr) == json_error_numeric_overflow)
        root = json_loadb (json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL,
                           &jerr);
    return root;
}

nf_err_t
nf_json_to_mp (const char *json, size_t len, msgpack_packer *pk)
{
    json_t *root = s_load (json, len);
    if (!root)
        return NF_ERR_INVALID;
    s_pack_json (root, pk);
    json_decref (root);
    return NF_OK;
}

nf_err_t
nf_json_to_mp_with (const char *json, size_t len, const char *key, const char *value, size_t vlen,
                    msgpack_packer *pk)
{
    json_t *root = s_load (json, len);
    if (!json_is_object (root)) {
        json_decref (root);
        return NF_ERR_INVALID;
    }
    msgpack_pack_map (pk, json_object_size (root) + 1);
    for (void *it = json_object_iter (root); it; it = json_object_iter_next (root, it)) {
        nf_pk_str (pk, json_object_iter_key (it));
        s_pack_json (json_object_iter_value (it), pk);
    }
    if (value) {
        nf_pk_str (pk, key);
        nf_pk_strn (pk, value, vlen);
    }
    else
        nf_pk_kv_nil (pk, key);
    json_decref (root);
    return NF_OK;
}

void
nf_pk_json (msgpack_packer *pk, const json_t *j)
{
    if (j)
        s_pack_json (j, pk);
    else
        msgpack_pack_nil (pk);
}
