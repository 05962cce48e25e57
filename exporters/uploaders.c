/*
 * exporters/uploaders.c - every uploader (exporters/uploader.h). A new one
 * (say, a message queue) is one file and one line here.
 */
#include <string.h>

#include "exporters/uploader.h"

extern const struct fr_uploader fr_uploader_http;
extern const struct fr_uploader fr_uploader_file;

const struct fr_uploader *const fr_uploaders[] = {
    &fr_uploader_http,
    &fr_uploader_file,
};
const size_t fr_uploaders_count = sizeof fr_uploaders / sizeof fr_uploaders[0];

const struct fr_uploader *
fr_uploader_for_url(const char *url)
{
    const char *colon = strstr(url, "://");
    if (colon == NULL)
        return NULL;
    size_t n = (size_t)(colon - url);
    for (size_t i = 0; i < fr_uploaders_count; i++) {
        const char *s = fr_uploaders[i]->schemes;
        while (*s) {
            size_t k = strcspn(s, ",");
            if (k == n && strncasecmp(s, url, n) == 0)
                return fr_uploaders[i];
            s += k + (s[k] == ',');
        }
    }
    return NULL;
}
