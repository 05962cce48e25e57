/*
 * redact/validators.c - the detectors' validators: a candidate that a
 * detector's pattern found is kept only when its validator agrees (a card
 * number passes Luhn, an address parses). A detector names one in the
 * policy (`validate: luhn`); a new one is a function here and one line in
 * fr_validators[].
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "redact/internal.h"

static bool
one_of(unsigned char ch, const char *set)
{
    return ch != 0 && strchr(set, ch) != NULL;
}

static bool
valid_luhn(const char *text, size_t len_all, size_t start, size_t end)
{
    (void)len_all;
    const char *t = text + start;
    size_t len = end - start;
    int sum = 0, n = 0;
    bool all_same = true;
    char first = 0;
    for (size_t i = len; i-- > 0;) {
        if (!isdigit((unsigned char)t[i]))
            continue;
        int v = t[i] - '0';
        if (first == 0)
            first = t[i];
        else if (t[i] != first)
            all_same = false;
        if (n % 2 == 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
        n++;
    }
    return n >= 13 && n <= 19 && sum % 10 == 0 && !all_same;
}

static bool
valid_ipv4(const char *t, size_t len, size_t start, size_t end)
{
    (void)len;
    /* part of a longer dotted run (an OID or a 5-part version): not an address */
    if (start >= 2 && t[start - 1] == '.' && isdigit((unsigned char)t[start - 2]))
        return false;
    if (end + 1 < len && t[end] == '.' && isdigit((unsigned char)t[end + 1]))
        return false;
    int octet = 0, digits = 0;
    for (size_t i = start; i <= end; i++) {
        if (i == end || t[i] == '.') {
            if (digits == 0 || octet > 255)
                return false;
            octet = 0;
            digits = 0;
            continue;
        }
        if (digits == 1 && octet == 0)
            return false; /* a leading zero */
        octet = octet * 10 + (t[i] - '0');
        digits++;
    }
    return true;
}

static bool
valid_ipv6(const char *t, size_t len, size_t start, size_t end)
{
    size_t n = end - start;
    if (n < 3 || n > 45)
        return false;
    /* glued to a word or another colon: code such as a::b or a longer token */
    if (start > 0 &&
        (isalnum((unsigned char)t[start - 1]) || t[start - 1] == ':' || t[start - 1] == '_'))
        return false;
    if (end < len && (isalnum((unsigned char)t[end]) || t[end] == ':' || t[end] == '_'))
        return false;
    char buf[46];
    memcpy(buf, t + start, n);
    buf[n] = '\0';
    int groups = 0;
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        bool hex = isxdigit((unsigned char)buf[i]);
        if (hex && !in)
            groups++;
        in = hex;
    }
    struct in6_addr a;
    return groups >= 3 && inet_pton(AF_INET6, buf, &a) == 1;
}

static bool
valid_phone(const char *t, size_t len, size_t start, size_t end)
{
    /* a group of a longer digit run (e.g. a 16-digit number failing Luhn) */
    if (start >= 2 && isdigit((unsigned char)t[start - 2]) && strchr(" .-", t[start - 1]))
        return false;
    /* the tail of an identifier such as INV-2024-000873 or build.2024.1015 */
    if (start >= 2 && isalnum((unsigned char)t[start - 2]) && strchr("-._/", t[start - 1]))
        return false;
    if (end + 1 < len && strchr(" .-", t[end]) && t[end] != '\0' &&
        isdigit((unsigned char)t[end + 1]))
        return false;
    /* a '+' inside a token (a version's ~++20220202101403+9163), or one going on after it (every
       pattern ends at a word boundary, so no letter or digit can) */
    if (t[start] == '+' && start >= 1 &&
        (isalnum((unsigned char)t[start - 1]) || one_of((unsigned char)t[start - 1], "+~._-/")))
        return false;
    if (end < len && t[end] == '+')
        return false;
    int digits = 0;
    for (size_t i = start; i < end; i++)
        digits += isdigit((unsigned char)t[i]) != 0;
    bool intl = t[start] == '+' || t[start] == '(';
    return intl ? digits >= 8 && digits <= 15 : digits >= 10 && digits <= 11;
}

/* The IBAN countries (ISO 13616 registry) and the length of their IBANs. */
static const char iban_lengths[] =
    "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BI27BR29BY28CH21CR22CY28CZ24DE22DJ27DK18DO28EE20EG29"
    "ES24FI18FK18FO18FR27GB22GE22GI23GL18GR27GT28HR21HU28IE22IL23IQ23IS26IT27JO30KW30KZ20LB28"
    "LC32LI21LT20LU20LV21LY25MC27MD24ME22MK19MN20MR27MT31MU30NI28NL18NO15OM23PK24PL28PS29PT25"
    "QA29RO24RS22RU33SA24SC31SD18SE24SI19SK24SM27SO23ST25SV28TL23TN24TR26UA29VA22VG24XK20YE30";

static bool
valid_iban(const char *t, size_t len, size_t start, size_t end)
{
    (void)len;
    char c[40];
    size_t n = 0;
    for (size_t i = start; i < end; i++) {
        if (t[i] == ' ')
            continue;
        if (n == sizeof c)
            return false;
        c[n++] = t[i];
    }
    size_t want = 0;
    for (const char *e = iban_lengths; *e != '\0'; e += 4)
        if (e[0] == c[0] && e[1] == c[1]) {
            want = (size_t)((e[2] - '0') * 10 + (e[3] - '0'));
            break;
        }
    if (want == 0 || n != want)
        return false;
    /* the check: the first four characters moved to the end, letters as 10..35, mod 97 is 1 */
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        char ch = c[(k + 4) % n];
        if (isdigit((unsigned char)ch))
            rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
        else if (ch >= 'A' && ch <= 'Z')
            rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
        else
            return false;
    }
    return rem == 1;
}

/* A random base-36 key (Mailgun's key-...) has a letter past f after its prefix; a hex digest
   (an MD5 after "key-" in a cache key) has none. */
static bool
valid_base36(const char *t, size_t len, size_t start, size_t end)
{
    (void)len;
    const char *dash = memchr(t + start, '-', end - start);
    for (size_t i = dash != NULL ? (size_t)(dash - t) + 1 : start; i < end; i++)
        if (isalpha((unsigned char)t[i]) && tolower((unsigned char)t[i]) > 'f')
            return true;
    return false;
}

/*
 * A password said in prose ("my password is Tr0ub4dor&3"): the candidate's last word, less
 * the sentence's punctuation after it, is a password when it holds a digit, a symbol (other
 * than a word's - ' _ or an escape's \) or a capital inside lower-case letters. A plain word
 * ("password is required", "... is NULL"), a placeholder ("<your password>", "$DB_PASSWORD",
 * "{password}", "%s"), a mask ("********") or an escape sequence is not.
 */
static bool
valid_password(const char *t, size_t len, size_t start, size_t end)
{
    (void)len;
    size_t v = end;
    while (v > start && !isspace((unsigned char)t[v - 1]) && t[v - 1] != '"' && t[v - 1] != '\'' &&
           t[v - 1] != '`')
        v--;
    size_t e = end;
    while (e > v && one_of((unsigned char)t[e - 1], ".,;:!?)]}"))
        e--;
    if (e - v < 4 || one_of((unsigned char)t[v], "<${%*\\"))
        return false;
    bool digit = false, symbol = false, lower = false, inner_upper = false, same = true;
    for (size_t i = v; i < e; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch == '\\') { /* an escape (\n, troff's \&): neither is the password's */
            i++;
            continue;
        }
        if (ch != (unsigned char)t[v])
            same = false;
        if (isdigit(ch))
            digit = true;
        else if (islower(ch))
            lower = true;
        else if (isupper(ch))
            inner_upper = inner_upper || i > v;
        else if (ch < 0x80 && ch > ' ' && !one_of(ch, "-'_\\"))
            symbol = true;
    }
    return !same && (digit || symbol || (inner_upper && lower));
}

const struct fr_validator fr_validators[] = {
    {"luhn", "13 to 19 digits with a valid Luhn check digit, not all the same", valid_luhn},
    {"ipv4", "four octets 0-255 without leading zeros, not part of a longer dotted run",
     valid_ipv4},
    {"ipv6", "parses as an IPv6 address, at least three groups, not glued to a word", valid_ipv6},
    {"phone", "10-11 digits, or 8-15 after + or (, not part of a longer number or identifier",
     valid_phone},
    {"iban", "the length of its country's IBANs and a valid ISO 7064 mod-97 check", valid_iban},
    {"base36", "a letter past f after the first '-': a random base-36 key, not a hex digest",
     valid_base36},
    {"password",
     "the last word holds a digit, a symbol or an inner capital; not a placeholder or a mask",
     valid_password},
    {NULL, NULL, NULL},
};

const struct fr_validator *
fr_validator_find(const char *name)
{
    for (const struct fr_validator *v = fr_validators; v->name != NULL; v++)
        if (strcmp(v->name, name) == 0)
            return v;
    return NULL;
}
