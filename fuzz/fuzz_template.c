/*  fuzz_template: the template engine both ways. An input is an HTML page
    for the shipped templates (the watch page and the listing site), and
    also a template text: when it loads, it is applied to a fixed page.
    Results are objects whose strings are valid UTF-8. */
#include "nf_fuzz.h"
#include "nf_template.h"

#include <string.h>

extern const char *const nf_templates[];
extern const int nf_templates_count;

static const char s_page[] =
    "<html lang='en'><head><title>T</title></head><body><h1 class='title'> A &amp; B </h1>"
    "<span class='views'>1,234</span><time datetime='2026-01-02T03:04:05Z'>x</time>"
    "<span class='duration'>12:34</span><a class='channel' data-id='UC1' data-country='US'>C</a>"
    "<ul id='results'><li><a class='item' href='/site/item/1'>1</a></li></ul>"
    "<script>var ytInitialPlayerResponse = {\"videoDetails\":{\"title\":\"t\"}};</script>"
    "<div class='transcript'>hello</div></body></html>";

static nf_template_t *s_shipped[8];
static size_t s_shipped_n;

static void
s_check_result (json_t *r)
{
    NF_FUZZ_CHECK (json_is_object (r));
    char *dump = json_dumps (r, JSON_COMPACT);
    NF_FUZZ_CHECK (dump != NULL && nf_utf8_valid (dump, strlen (dump)));
    free (dump);
    json_decref (r);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err[512];
    if (s_shipped_n == 0) {
        /* The embedded data files that are extraction templates (youtube_clients.json,
           the client profiles, has no "fields"). */
        for (int i = 0; i < nf_templates_count && s_shipped_n < 8; i++) {
            if (!strstr (nf_templates[i], "\"fields\""))
                continue;
            s_shipped[s_shipped_n] =
                nf_template_new (nf_templates[i], strlen (nf_templates[i]), err, sizeof err);
            NF_FUZZ_CHECK (s_shipped[s_shipped_n] != NULL);
            s_shipped_n++;
        }
    }
    const char *body = (const char *) data;
    for (size_t i = 0; i < s_shipped_n; i++) {
        err[0] = '\0';
        json_t *r =
            nf_template_apply (s_shipped[i], body, size, "http://127.0.0.1/x", err, sizeof err);
        if (r)
            s_check_result (r);
        else
            NF_FUZZ_CHECK (err[0] != '\0');
    }

    err[0] = '\0';
    nf_template_t *t = nf_template_new (body, size, err, sizeof err);
    if (!t) {
        NF_FUZZ_CHECK (err[0] != '\0');
        return 0;
    }
    json_t *r =
        nf_template_apply (t, s_page, sizeof s_page - 1, "http://127.0.0.1/x", err, sizeof err);
    if (r)
        s_check_result (r);
    nf_template_destroy (&t);
    return 0;
}
