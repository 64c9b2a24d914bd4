/*  fuzz_proto: libFuzzer target for the body decoder. Every input must
    decode or fail cleanly; decoded task and reply bodies are also converted
    to JSON, which must succeed or fail cleanly. Build: -DNF_FUZZ=ON with clang. */
#include "nf_proto.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err[256];
    nf_msg_t *msg = nf_msg_decode (data, size, 1 << 20, err, sizeof err);
    if (!msg)
        return 0;
    nf_task_t task;
    nf_reply_t reply;
    nf_task_decode (msg, &task, err, sizeof err);
    if (nf_reply_decode (msg, &reply, err, sizeof err) == 0 && reply.output) {
        nf_buf_t json;
        nf_buf_init (&json);
        nf_mp_to_json (reply.output, &json, err, sizeof err);
        nf_buf_free (&json);
    }
    nf_msg_destroy (&msg);
    return 0;
}
