/*
 * collectors/fields.c - table-driven validation of a kind's known `data`
 * fields. Unknown fields are always allowed (kept as they are); a known field
 * with the wrong type or an out-of-domain value rejects the event, and the
 * message names the full path ("data.usage.input_tokens").
 */
#include <stdio.h>
#include <string.h>

#include "collectors/collector.h"
#include "core/wire.h"

static bool
fields_type_ok(const json_t *v, unsigned types)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return types & FR_FT_STRING;
    case JSON_INTEGER:
        return types & (FR_FT_INT | FR_FT_NUMBER);
    case JSON_REAL:
        return types & FR_FT_NUMBER;
    case JSON_TRUE:
    case JSON_FALSE:
        return types & FR_FT_BOOL;
    case JSON_OBJECT:
        return types & FR_FT_OBJECT;
    case JSON_ARRAY:
        return types & FR_FT_ARRAY;
    case JSON_NULL:
        return true;
    }
    return false;
}

static const char *
fields_expected(unsigned types)
{
    if (types == FR_FT_STRING)
        return "a string";
    if (types == FR_FT_INT)
        return "an integer";
    if (types == FR_FT_NUMBER)
        return "a number";
    if (types == FR_FT_BOOL)
        return "a boolean";
    if (types == FR_FT_OBJECT)
        return "an object";
    if (types == FR_FT_ARRAY)
        return "an array";
    if (types == (FR_FT_STRING | FR_FT_OBJECT))
        return "a string or an object";
    if (types == (FR_FT_STRING | FR_FT_INT))
        return "a string or an integer";
    return "another type";
}

/* The field's path (prefix.name) is formatted only when it is needed: an error, a sub-object. */
static int
fields_check_one(const json_t *v, const struct fr_field *f, const char *prefix, struct fr_err *err)
{
    if (json_is_null(v))
        return FR_OK;
    if (!fields_type_ok(v, f->types))
        return fr_err_set(err, FR_E_TYPE, "%s.%s: must be %s, got %s", prefix, f->name,
                          fields_expected(f->types), fr_json_type_phrase(v));
    if (f->values != NULL && json_is_string(v)) {
        const char *s = json_string_value(v);
        bool found = false;
        for (const char *const *a = f->values; *a != NULL && !found; a++)
            found = strcmp(*a, s) == 0;
        if (!found) {
            char list[256] = "";
            for (const char *const *a = f->values; *a != NULL; a++) {
                strncat(list, *a, sizeof list - strlen(list) - 1);
                if (a[1] != NULL)
                    strncat(list, "|", sizeof list - strlen(list) - 1);
            }
            return fr_err_set(err, FR_E_VALUE, "%s.%s: must be one of %s", prefix, f->name, list);
        }
    }
    if (f->non_negative && json_is_number(v) && json_number_value(v) < 0)
        return fr_err_set(err, FR_E_VALUE, "%s.%s: must not be negative", prefix, f->name);
    if (f->sub != NULL && json_is_object(v)) {
        char path[160];
        snprintf(path, sizeof path, "%s.%s", prefix, f->name);
        return fr_fields_check(v, f->sub, path, err);
    }
    if (f->item_types != 0 && json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!fields_type_ok(item, f->item_types) || json_is_null(item))
                return fr_err_set(err, FR_E_TYPE, "%s.%s[%zu]: must be %s, got %s", prefix, f->name,
                                  i, fields_expected(f->item_types), fr_json_type_phrase(item));
        }
    }
    return FR_OK;
}

int
fr_fields_check(const json_t *obj, const struct fr_field *fields, const char *prefix,
                struct fr_err *err)
{
    if (fields == NULL || obj == NULL)
        return FR_OK;
    for (const struct fr_field *f = fields; f->name != NULL; f++) {
        const json_t *v = json_object_get(obj, f->name);
        if (v == NULL)
            continue;
        int rc = fields_check_one(v, f, prefix, err);
        if (rc != FR_OK)
            return rc;
    }
    return FR_OK;
}

const char *
fr_data_str(const struct fr_event *ev, const char *key)
{
    if (ev->data == NULL)
        return NULL;
    return json_string_value(json_object_get(ev->data, key));
}

bool
fr_json_int_at(const json_t *obj, const char *key, int64_t *out)
{
    if (obj == NULL)
        return false;
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = (int64_t)json_real_value(v);
        return true;
    }
    return false;
}

bool
fr_data_int(const struct fr_event *ev, const char *key, int64_t *out)
{
    return fr_json_int_at(ev->data, key, out);
}
