/*
 * agent/api/ui.c - the web console's files (agent/ui/, embedded in the
 * binary at build time by CMakeLists.txt's fr_embed): no CDN, no network,
 * works on an air-gapped host. The files carry no data, so they are served
 * without a token; the page asks for the query token and sends it with
 * every /v1/ request. Every answer carries a strict Content-Security-Policy
 * (scripts and styles from this origin only: no inline script, no eval).
 */
#include <string.h>

#include "agent/api/api.h"
#include "agent/live.h"
#include "core/mem.h"

extern const char fr_ui_index_html[], fr_ui_app_js[], fr_ui_app_css[];
extern const unsigned long fr_ui_index_html_len, fr_ui_app_js_len, fr_ui_app_css_len;

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

static enum MHD_Result
ui_send(struct fr_pipeline *p, struct MHD_Connection *c, int status, const char *type,
        const char *body, size_t len, const char *location)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Content-Security-Policy", csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    if (location != NULL)
        MHD_add_response_header(r, "Location", location);
    return fr_api_queue(p, c, status, r);
}

enum MHD_Result
fr_api_ui(struct fr_pipeline *p, struct MHD_Connection *c, const char *url)
{
    static const char moved[] = "the console is at /ui/\n";
    if (strcmp(url, "/") == 0 || strcmp(url, "/ui") == 0)
        return ui_send(p, c, MHD_HTTP_FOUND, "text/plain; charset=utf-8", moved, sizeof moved - 1,
                       "/ui/");
    const char *name = url + 4; /* after "/ui/" */
    if (strcmp(name, "") == 0 || strcmp(name, "index.html") == 0)
        return ui_send(p, c, MHD_HTTP_OK, "text/html; charset=utf-8", fr_ui_index_html,
                       fr_ui_index_html_len, NULL);
    if (strcmp(name, "auth.json") == 0) {
        /* whether reads need a token: the page asks for it before its first read, instead
           of learning it from a 401 */
        struct fr_live *l = fr_pipeline_live_get(p);
        bool need = l->query_token[0] != '\0' || l->token[0] != '\0';
        fr_pipeline_live_put(p, l);
        static const char yes[] = "{\"token_required\":true}\n",
                          no[] = "{\"token_required\":false}\n";
        return ui_send(p, c, MHD_HTTP_OK, "application/json", need ? yes : no,
                       need ? sizeof yes - 1 : sizeof no - 1, NULL);
    }
    if (strcmp(name, "app.js") == 0)
        return ui_send(p, c, MHD_HTTP_OK, "text/javascript; charset=utf-8", fr_ui_app_js,
                       fr_ui_app_js_len, NULL);
    if (strcmp(name, "app.css") == 0)
        return ui_send(p, c, MHD_HTTP_OK, "text/css; charset=utf-8", fr_ui_app_css,
                       fr_ui_app_css_len, NULL);
    static const char none[] = "no such file in the console\n";
    return ui_send(p, c, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", none, sizeof none - 1,
                   NULL);
}
