/*  fuzz_proto: the body decoder. Every input decodes or fails with a
    message; a decoded body is read as a task and as a reply, and a reply's
    output converts to JSON that jansson reads back and that packs to
    msgpack again (what the broker does before it stores a column). */
#include "nf_fuzz.h"
#include "nf_proto.h"

#include <jansson.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err[256] = "";
    nf_msg_t *msg = nf_msg_decode (data, size, 1 << 20, err, sizeof err);
    if (!msg) {
        NF_FUZZ_CHECK (err[0] != '\0');
        return 0;
    }
    nf_task_t task;
    nf_reply_t reply;
    err[0] = '\0';
    if (nf_task_decode (msg, &task, err, sizeof err) != 0)
        NF_FUZZ_CHECK (err[0] != '\0');
    err[0] = '\0';
    if (nf_reply_decode (msg, &reply, err, sizeof err) == 0) {
        if (reply.output) {
            nf_buf_t json;
            nf_buf_init (&json);
            if (nf_mp_to_json (reply.output, &json, err, sizeof err) == 0) {
                NF_FUZZ_CHECK (nf_utf8_valid (json.data, json.len));
                json_error_t jerr;
                json_t *back = json_loadb (json.data, json.len, JSON_DECODE_ANY, &jerr);
                NF_FUZZ_CHECK (back != NULL);
                json_decref (back);
                nf_buf_t packed;
                nf_buf_init (&packed);
                msgpack_packer pk;
                nf_pk_init_buf (&pk, &packed);
                NF_FUZZ_CHECK (nf_json_to_mp (json.data, json.len, &pk) == 0);
                nf_buf_free (&packed);
            }
            nf_buf_free (&json);
        }
    }
    else
        NF_FUZZ_CHECK (err[0] != '\0');
    nf_msg_destroy (&msg);
    return 0;
}
