/*  nf_proto: the nicheflow wire format (see proto/README.md).

    Transport is Majordomo MDP/0.1 (ZeroMQ RFC 7, worker side "MDPW01";
    client side "MDPC01"); every nicheflow body is ONE msgpack frame holding
    a map with a protocol version "v". Decoding is total: any byte sequence
    either decodes or yields an error message, within a size limit, a depth
    limit and an element limit checked before msgpack-c allocates anything. */
#ifndef NF_PROTO_H
#define NF_PROTO_H

#include "nf_err.h"
#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nf_buf.h"

#define NF_PROTO_VERSION 1
#define NF_MDPW          "MDPW01"
#define NF_MDPC          "MDPC01"
enum {
    NF_MDPW_READY = 1,
    NF_MDPW_REQUEST = 2,
    NF_MDPW_REPLY = 3,
    NF_MDPW_HEARTBEAT = 4,
    NF_MDPW_DISCONNECT = 5,
};
#define NF_PROTO_MAX_DEPTH 32
/* A body may hold one value per NF_PROTO_BYTES_PER_VALUE bytes (and at
   least NF_PROTO_MIN_VALUES values). msgpack-c spends 24 bytes on each
   value it decodes (48 on a map's pair), so a body of nils (one byte a
   value) took 24 times its size: about 100 MB for a 4 MB frame. With this
   cap a body costs at most about six times its size; the densest real
   bodies (maps of numbers under short keys) average over 8 bytes a value. */
#define NF_PROTO_BYTES_PER_VALUE 4
#define NF_PROTO_MIN_VALUES      4096

/* A decoded body; the msgpack objects it hands out live as long as it. */
typedef struct nf_msg_t nf_msg_t;

/* Check the structure of DATA (LEN bytes) without allocating: one complete
   msgpack value, no trailing bytes, no ext types, depth and element limits.
   Returns NF_OK, or NF_ERR_PROTO with a reason in ERR. */
nf_err_t nf_mp_check (const void *data, size_t len, char *err, size_t errlen);

/* Decode one body of at most MAX bytes. The message keeps its own copy of
   DATA (msgpack-c's strings point into the buffer they were decoded from),
   so the caller may free DATA at once. NULL with a reason in ERR when the
   bytes are not a msgpack map within the limits. */
nf_msg_t *nf_msg_decode (const void *data, size_t len, size_t max, char *err, size_t errlen);
void nf_msg_destroy (nf_msg_t **self_p);
const msgpack_object *nf_msg_root (nf_msg_t *self);

/* Map look-ups; NULL/false when KEY is absent or of another type. */
const msgpack_object *nf_mp_get (const msgpack_object *map, const char *key);
bool nf_mp_get_str (const msgpack_object *map, const char *key, const char **str, size_t *len);
/* A copy of a string field (caller frees), or NULL. */
char *nf_mp_dup_str (const msgpack_object *map, const char *key);
bool nf_mp_get_int (const msgpack_object *map, const char *key, int64_t *value);
/* Any finite number (integer or float) as a double. */
bool nf_mp_get_num (const msgpack_object *map, const char *key, double *value);
bool nf_mp_get_bool (const msgpack_object *map, const char *key, bool *value);
bool nf_mp_is_str (const msgpack_object *o, const char *text);

/* Append the JSON form of O to OUT. Strings are UTF-8-repaired; map keys
   must be strings; binaries are refused. NF_OK or NF_ERR_PROTO with ERR. */
nf_err_t nf_mp_to_json (const msgpack_object *o, nf_buf_t *out, char *err, size_t errlen);
/* Pack the JSON text JSON (LEN bytes) as msgpack. NF_OK or NF_ERR_INVALID. */
nf_err_t nf_json_to_mp (const char *json, size_t len, msgpack_packer *pk);
/* Pack the JSON object JSON (LEN bytes) as a msgpack map with one more
   member: KEY, the string VALUE of VLEN bytes as it is (NULL: nil), for a
   long text that should not go through JSON. KEY must not be a member of
   JSON. NF_OK, or NF_ERR_INVALID when JSON is not an object. */
nf_err_t nf_json_to_mp_with (const char *json, size_t len, const char *key, const char *value,
                             size_t vlen, msgpack_packer *pk);
/* The value of KEY in MAP as a new jansson value, or NULL when it is
   missing or cannot be converted. */
json_t *nf_mp_get_json (const msgpack_object *map, const char *key);
/* Pack the jansson value J (any type) onto PK. */
void nf_pk_json (msgpack_packer *pk, const json_t *j);

/* A packer that appends to BUF. */
void nf_pk_init_buf (msgpack_packer *pk, nf_buf_t *buf);

/* Packing helpers for maps with string keys. */
void nf_pk_str (msgpack_packer *pk, const char *text);
void nf_pk_strn (msgpack_packer *pk, const char *text, size_t len);
void nf_pk_kv_str (msgpack_packer *pk, const char *key, const char *value);
void nf_pk_kv_int (msgpack_packer *pk, const char *key, int64_t value);
void nf_pk_kv_bool (msgpack_packer *pk, const char *key, bool value);
void nf_pk_kv_nil (msgpack_packer *pk, const char *key);

/* ---- task (broker -> worker) ------------------------------------------ */

typedef struct {
    const char *service;         /* stage service name (NUL-terminated copy) */
    const char *token;           /* lease token, echoed by the reply */
    int64_t job_id;              /* job the task belongs to */
    const char *video_id;        /* NULL for a job-scope task */
    int64_t attempt;             /* 1-based attempt number */
    const msgpack_object *job;   /* map: niche, sub_niche, options */
    const msgpack_object *input; /* map: the stage's input */
} nf_task_t;

/* Decode a task body; the strings point into MSG-owned copies.
   NF_OK or NF_ERR_PROTO with ERR naming the bad field. */
nf_err_t nf_task_decode (nf_msg_t *msg, nf_task_t *task, char *err, size_t errlen);

/* ---- reply (worker -> broker) ----------------------------------------- */

typedef enum { NF_REPLY_OK, NF_REPLY_REJECT, NF_REPLY_ERROR } nf_reply_status_t;

typedef struct {
    const char *token;            /* lease token from the task */
    nf_reply_status_t status;     /* outcome */
    const char *reason;           /* REJECT: rule that filtered the video */
    const char *error;            /* ERROR: what went wrong */
    bool retryable;               /* ERROR: may a later attempt succeed */
    const msgpack_object *output; /* map or NULL: fields to store */
    const msgpack_object *usage;  /* map or NULL: quota_units, http_requests, tokens */
} nf_reply_t;

nf_err_t nf_reply_decode (nf_msg_t *msg, nf_reply_t *reply, char *err, size_t errlen);
const char *nf_reply_status_name (nf_reply_status_t status);

/* Encode the body of a refused client request: {v, ok: false, error: TEXT},
   appended to OUT. */
void nf_client_error_encode (nf_buf_t *out, const char *text);

/* Encode a client request of one integer field, {v, KEY: VALUE} (nf.status
   {job_id}, nf.list {limit}), appended to OUT. */
void nf_client_request_int (nf_buf_t *out, const char *key, int64_t value);

/* Encode a reply: OUTPUT and USAGE are msgpack bytes of a map (or NULL).
   The result is appended to OUT. */
void nf_reply_encode (nf_buf_t *out, const char *token, nf_reply_status_t status,
                      const char *reason_or_error, bool retryable, const void *output,
                      size_t output_len, const void *usage, size_t usage_len);

#endif
