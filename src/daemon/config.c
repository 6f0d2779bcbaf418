/* Configuration loading. One table of keys drives parsing, defaults, bounds
 * and messages; only config_load touches the file system. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "daemon/config.h"

#define KIB ((uint64_t)1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define SECOND_MS ((uint64_t)1000)
#define MINUTE_MS (60 * SECOND_MS)
#define HOUR_MS (60 * MINUTE_MS)

/* Linux moves at most this many bytes in one sendfile() call. */
#define SENDFILE_MAX ((uint64_t)0x7ffff000)

/* A config file this large is a mistake, and the cap bounds reading a FIFO
 * or a device by accident. */
#define CONFIG_FILE_MAX MIB

/* Values quoted back in messages are cut to this many bytes. */
#define SHOWN_MAX 60

enum key_type {
	KEY_LISTEN, /* HOST:PORT, or a sequence of them */
	KEY_ADDR,   /* one HOST:PORT, unset (addr_len 0) by default */
	KEY_PATH,   /* made absolute against the config file's directory */
	KEY_STRING, /* any non-empty text */
	KEY_ENUM,   /* one of the key's choices */
	KEY_BYTES,  /* a size: "4096", "4096B", "256KiB", "1MiB", "1GiB" */
	KEY_MS,     /* a duration: "500ms", "10s", "1m", "2h" */
	KEY_COUNT,  /* a plain decimal integer */
};

struct choice {
	const char *name;
	int value;
};

/* One configuration key. The type gives the unit of min, max and def:
 * bytes for KEY_BYTES, milliseconds for KEY_MS, a plain number for
 * KEY_COUNT, the enum value for KEY_ENUM. */
struct key {
	const char *name; /* dotted path, as in "transfer.chunk" */
	enum key_type type;
	size_t offset; /* of the field in struct config */
	size_t size;   /* of that field; numbers and enums are stored by width */
	uint64_t min;
	uint64_t max;
	uint64_t def;
	const char *def_text; /* default of KEY_LISTEN and KEY_STRING keys */
	bool required;
	const struct choice *choices; /* KEY_ENUM, ending with a NULL name */
};

struct unit {
	const char *suffix;
	uint64_t scale;
};

static const struct unit size_units[] = {
	{ "", 1 }, /* a bare number is bytes */
	{ "B", 1 },
	{ "KiB", KIB },
	{ "MiB", MIB },
	{ "GiB", GIB },
	{ NULL, 0 },
};

static const struct unit duration_units[] = {
	{ "ms", 1 },
	{ "s", SECOND_MS },
	{ "m", MINUTE_MS },
	{ "h", HOUR_MS },
	{ NULL, 0 },
};

static const struct choice mode_choices[] = {
	{ "sendfile", FERRY_MODE_SENDFILE },
	{ "buffered", FERRY_MODE_BUFFERED },
	{ NULL, 0 },
};

static const struct choice format_choices[] = {
	{ "text", FERRY_LOG_TEXT },
	{ "json", FERRY_LOG_JSON },
	{ NULL, 0 },
};

static const struct choice level_choices[] = {
	{ "error", LOG_LEVEL_ERROR },
	{ "warn", LOG_LEVEL_WARN },
	{ "info", LOG_LEVEL_INFO },
	{ "debug", LOG_LEVEL_DEBUG },
	{ NULL, 0 },
};

_Static_assert(sizeof(enum transfer_mode) == sizeof(unsigned),
	       "enums are stored as unsigned");
_Static_assert(sizeof(enum log_format) == sizeof(unsigned),
	       "enums are stored as unsigned");
_Static_assert(sizeof(enum log_level) == sizeof(unsigned),
	       "enums are stored as unsigned");

#define FIELD(member)                                                         \
	.offset = offsetof(struct config, member),                            \
	.size = sizeof(((struct config *)0)->member)

static const struct key keys[] = {
	{ .name = "listen", .type = KEY_LISTEN, FIELD(listen),
	  .def_text = "127.0.0.1:7070" },
	{ .name = "root", .type = KEY_PATH, FIELD(root), .required = true },
	{ .name = "transfer.mode", .type = KEY_ENUM, FIELD(mode),
	  .def = FERRY_MODE_SENDFILE, .choices = mode_choices },
	{ .name = "transfer.chunk", .type = KEY_BYTES, FIELD(chunk_bytes),
	  .min = 4 * KIB, .max = SENDFILE_MAX, .def = MIB },
	{ .name = "transfer.buffer", .type = KEY_BYTES, FIELD(buffer_bytes),
	  .min = 4 * KIB, .max = 64 * MIB, .def = 256 * KIB },
	{ .name = "limits.connections", .type = KEY_COUNT,
	  FIELD(max_connections), .min = 1, .max = 1000000, .def = 10000 },
	{ .name = "limits.per_client", .type = KEY_COUNT, FIELD(max_per_client),
	  .min = 1, .max = 1000000, .def = 64 },
	{ .name = "limits.request_timeout", .type = KEY_MS,
	  FIELD(request_timeout_ms), .min = 1, .max = HOUR_MS,
	  .def = 10 * SECOND_MS },
	{ .name = "limits.idle_timeout", .type = KEY_MS, FIELD(idle_timeout_ms),
	  .min = 1, .max = 24 * HOUR_MS, .def = 60 * SECOND_MS },
	{ .name = "limits.send_timeout", .type = KEY_MS, FIELD(send_timeout_ms),
	  .min = 1, .max = 24 * HOUR_MS, .def = 60 * SECOND_MS },
	{ .name = "limits.shutdown_timeout", .type = KEY_MS,
	  FIELD(shutdown_timeout_ms), .min = 0, .max = HOUR_MS,
	  .def = 10 * SECOND_MS },
	/* Before a SIGTERM's shutdown: serving on, PING answered 503. */
	{ .name = "limits.drain", .type = KEY_MS, FIELD(drain_ms), .min = 0,
	  .max = HOUR_MS, .def = 0 },
	/* Bytes per second; 0 is no limit. */
	{ .name = "limits.rate", .type = KEY_BYTES, FIELD(rate_bps), .min = 0,
	  .max = 64 * GIB, .def = 0 },
	{ .name = "limits.rate_total", .type = KEY_BYTES, FIELD(rate_total_bps),
	  .min = 0, .max = 64 * GIB, .def = 0 },
	{ .name = "log.transfers", .type = KEY_STRING, FIELD(transfer_log),
	  .def_text = "-" },
	{ .name = "log.format", .type = KEY_ENUM, FIELD(log_format),
	  .def = FERRY_LOG_TEXT, .choices = format_choices },
	{ .name = "log.flush", .type = KEY_MS, FIELD(log_flush_ms), .min = 0,
	  .max = 60 * SECOND_MS, .def = 0 },
	{ .name = "log.level", .type = KEY_ENUM, FIELD(log_level),
	  .def = LOG_LEVEL_INFO, .choices = level_choices },
	{ .name = "threads", .type = KEY_COUNT, FIELD(threads), .min = 1,
	  .max = 1024, .def = 4 },
	{ .name = "user", .type = KEY_STRING, FIELD(user) },
	{ .name = "workers", .type = KEY_COUNT, FIELD(workers), .min = 1,
	  .max = 256, .def = 1 },
	{ .name = "metrics.listen", .type = KEY_ADDR, FIELD(metrics_listen) },
};

#define KEY_TOTAL (sizeof keys / sizeof keys[0])

/* State while one document is applied to a new struct config. */
struct loader {
	const char *name;     /* the file name messages start with */
	const char *base_dir; /* resolves a relative root; may be NULL */
	yaml_document_t *doc;
	struct config *cfg;
	struct config_diag *diag;
	int errors;
	bool oom; /* a message or a value could not be allocated */
	bool seen[KEY_TOTAL];
	yaml_mark_t metrics_mark; /* where metrics.listen was given */
};

static int diag_add(struct config_diag *diag, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void report(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Appends one formatted line to DIAG, which may be NULL. */
static int diag_add(struct config_diag *diag, const char *fmt, ...)
{
	va_list ap;
	char **lines;
	char *line;
	int n;

	if (!diag)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	line = malloc((size_t)n + 1);
	if (!line)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(line, (size_t)n + 1, fmt, ap);
	va_end(ap);
	lines = realloc(diag->lines, (diag->count + 1) * sizeof *lines);
	if (!lines) {
		free(line);
		return -ENOMEM;
	}
	lines[diag->count++] = line;
	diag->lines = lines;
	return 0;
}

/* Counts one error and records it as "FILE:LINE:COL: message". */
static void report(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	ld->errors++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (diag_add(ld->diag, "%s:%zu:%zu: %s", ld->name, mark.line + 1,
		     mark.column + 1, msg) < 0)
		ld->oom = true;
}

/* Copies TEXT into BUF (SHOWN_MAX + 4 bytes) for quoting in a message:
 * control characters become '?', and long text is cut short with "...". */
static const char *printable(const char *text, char *buf)
{
	size_t i;

	for (i = 0; text[i] && i < SHOWN_MAX; i++) {
		unsigned char c = (unsigned char)text[i];

		buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (text[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static const char *kind(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_SEQUENCE_NODE:
		return "a sequence";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "a scalar";
	}
}

/* Whether NODE is YAML's null: an empty or "~" or "null" plain scalar. */
static bool is_null(const yaml_node_t *node)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	size_t i;

	if (node->type != YAML_SCALAR_NODE ||
	    node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
		if (strcmp((const char *)node->data.scalar.value, nulls[i]) == 0)
			return true;
	}
	return false;
}

/* Reads the decimal digits at the start of TEXT and sets *END after them.
 * Returns -EINVAL without digits, -ERANGE when they do not fit. */
static int parse_digits(const char *text, uint64_t *value, const char **end)
{
	const char *p;
	uint64_t v = 0;
	bool overflow = false;

	for (p = text; *p >= '0' && *p <= '9'; p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - digit) / 10)
			overflow = true;
		else
			v = v * 10 + digit;
	}
	*end = p;
	if (p == text)
		return -EINVAL;
	if (overflow)
		return -ERANGE;
	*value = v;
	return 0;
}

/* Parses digits followed by one of UNITS' suffixes into base units. The
 * syntax is checked before the range, so "1.5MiB" is -EINVAL however long. */
static int parse_scaled(const char *text, const struct unit *units,
			uint64_t *value)
{
	const struct unit *u;
	const char *suffix;
	uint64_t n = 0;
	int rc;

	rc = parse_digits(text, &n, &suffix);
	if (rc == -EINVAL)
		return rc;
	for (u = units; u->suffix; u++) {
		if (strcmp(suffix, u->suffix) == 0)
			break;
	}
	if (!u->suffix)
		return -EINVAL;
	if (rc < 0)
		return rc;
	if (n > UINT64_MAX / u->scale)
		return -ERANGE;
	*value = n * u->scale;
	return 0;
}

int config_parse_size(const char *text, uint64_t *bytes)
{
	return parse_scaled(text, size_units, bytes);
}

int config_parse_duration(const char *text, uint64_t *ms)
{
	return parse_scaled(text, duration_units, ms);
}

static int parse_count(const char *text, uint64_t *value)
{
	static const struct unit plain[] = { { "", 1 }, { NULL, 0 } };

	return parse_scaled(text, plain, value);
}

/* Writes VALUE with the largest of UNITS that divides it exactly. */
static void format_scaled(uint64_t value, const struct unit *units, char *buf,
			  size_t size)
{
	const struct unit *u, *best = NULL;

	for (u = units; u->suffix; u++) {
		if (!u->suffix[0])
			continue;
		if (!best || (value % u->scale == 0 && u->scale > best->scale))
			best = u;
	}
	snprintf(buf, size, "%" PRIu64 "%s", value / best->scale,
		 best->suffix);
}

static void format_bound(const struct key *k, uint64_t value, char *buf,
			 size_t size)
{
	if (k->type == KEY_BYTES)
		format_scaled(value, size_units, buf, size);
	else if (k->type == KEY_MS)
		format_scaled(value, duration_units, buf, size);
	else
		snprintf(buf, size, "%" PRIu64, value);
}

/* Parses a listen address; on -EINVAL, *WHY says what is wrong. */
static int parse_listen(const char *text, struct listen_addr *out,
			const char **why)
{
	struct listen_addr la;
	const char *host, *host_end, *port_text, *end;
	char host_buf[sizeof la.text];
	uint64_t port = 0;
	bool v6;
	int rc;

	*why = NULL;
	memset(&la, 0, sizeof la);
	if (strlen(text) >= sizeof la.text) {
		*why = "too long for an address";
		return -EINVAL;
	}
	if (text[0] == '[') {
		v6 = true;
		host = text + 1;
		host_end = strchr(host, ']');
		if (!host_end || host_end[1] != ':') {
			*why = "expected [IPv6]:PORT";
			return -EINVAL;
		}
		port_text = host_end + 2;
	} else {
		v6 = false;
		host = text;
		host_end = strrchr(text, ':');
		if (!host_end) {
			*why = "expected HOST:PORT";
			return -EINVAL;
		}
		if (memchr(text, ':', (size_t)(host_end - text))) {
			*why = "an IPv6 HOST goes in brackets, as in [::1]:7070";
			return -EINVAL;
		}
		port_text = host_end + 1;
	}

	rc = parse_digits(port_text, &port, &end);
	if (rc < 0 || *end || port > 65535) {
		*why = "PORT must be a number from 0 to 65535";
		return -EINVAL;
	}

	memcpy(host_buf, host, (size_t)(host_end - host));
	host_buf[host_end - host] = '\0';
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&la.addr;

		if (inet_pton(AF_INET6, host_buf, &sin6->sin6_addr) != 1) {
			*why = "HOST must be an IP address";
			return -EINVAL;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		la.addr_len = sizeof *sin6;
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&la.addr;

		if (strcmp(host_buf, "*") == 0) {
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
		} else if (inet_pton(AF_INET, host_buf, &sin->sin_addr) != 1) {
			*why = "HOST must be an IP address";
			return -EINVAL;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		la.addr_len = sizeof *sin;
	}
	memcpy(la.text, text, strlen(text) + 1);
	la.deferred = true;
	*out = la;
	return 0;
}

int config_parse_listen(const char *text, struct listen_addr *out)
{
	const char *why;

	return parse_listen(text, out, &why);
}

/* Returns PATH made absolute against BASE (unless PATH already is), with
 * ".", ".." and repeated slashes removed lexically; NULL when out of memory.
 * Symbolic links are left for the daemon to deal with when it opens root. */
static char *join_clean(const char *base, const char *path)
{
	size_t cap = strlen(base) + strlen(path) + 3;
	char *out, *joined, *p, *seg;
	size_t n = 0, len;

	/* The result is never longer than its input, so the input can live
	 * in the second half of the same allocation. */
	out = malloc(2 * cap);
	if (!out)
		return NULL;
	joined = out + cap;
	if (path[0] == '/')
		snprintf(joined, cap, "%s", path);
	else
		snprintf(joined, cap, "%s/%s", base, path);

	for (p = joined; *p;) {
		while (*p == '/')
			p++;
		seg = p;
		while (*p && *p != '/')
			p++;
		len = (size_t)(p - seg);
		if (len == 0 || (len == 1 && seg[0] == '.'))
			continue;
		if (len == 2 && seg[0] == '.' && seg[1] == '.') {
			while (n > 0 && out[--n] != '/')
				;
			continue;
		}
		out[n++] = '/';
		memcpy(out + n, seg, len);
		n += len;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return out;
}

static void *field_of(struct config *cfg, const struct key *k)
{
	return (char *)cfg + k->offset;
}

static void store_number(struct config *cfg, const struct key *k,
			 uint64_t value)
{
	unsigned narrow = (unsigned)value;

	if (k->size == sizeof value)
		memcpy(field_of(cfg, k), &value, sizeof value);
	else
		memcpy(field_of(cfg, k), &narrow, sizeof narrow);
}

/* Fills CFG with every key's default. */
static int set_defaults(struct config *cfg)
{
	const struct key *k;
	const char *why;
	char **field;

	for (k = keys; k < keys + KEY_TOTAL; k++) {
		switch (k->type) {
		case KEY_LISTEN:
			if (parse_listen(k->def_text, &cfg->listen[0], &why) < 0)
				return -EINVAL;
			cfg->listen_count = 1;
			break;
		case KEY_ADDR:
			break;
		case KEY_PATH:
		case KEY_STRING:
			if (!k->def_text)
				break;
			field = field_of(cfg, k);
			*field = strdup(k->def_text);
			if (!*field)
				return -ENOMEM;
			break;
		default:
			store_number(cfg, k, k->def);
			break;
		}
	}
	return 0;
}

/* Returns the text of NODE, the value of NAME, or NULL after reporting why
 * it has none. */
static const char *scalar_text(struct loader *ld, const char *name,
			       const yaml_node_t *node)
{
	const char *text;

	if (node->type != YAML_SCALAR_NODE) {
		report(ld, node->start_mark, "%s: expected a single value, got %s",
		       name, kind(node));
		return NULL;
	}
	text = (const char *)node->data.scalar.value;
	if (is_null(node)) {
		report(ld, node->start_mark, "%s: missing value", name);
		return NULL;
	}
	if (strlen(text) != node->data.scalar.length) {
		report(ld, node->start_mark, "%s: contains a NUL character",
		       name);
		return NULL;
	}
	return text;
}

/* "true" or "false" (YAML 1.2's booleans) into *VALUE; 0 or -EINVAL. */
static int parse_bool(const char *text, bool *value)
{
	if (strcmp(text, "true") == 0) {
		*value = true;
		return 0;
	}
	if (strcmp(text, "false") == 0) {
		*value = false;
		return 0;
	}
	return -EINVAL;
}

/* A listen entry's mapping, {address: HOST:PORT, proxy_protocol: BOOL,
 * deferred: BOOL}: the node of its address (the flags set in LA), or NULL
 * after reporting what is wrong. */
static const yaml_node_t *listen_mapping(struct loader *ld,
					 const yaml_node_t *map,
					 struct listen_addr *la)
{
	const yaml_node_t *address = NULL, *key, *value;
	const yaml_node_pair_t *pair;
	char shown[SHOWN_MAX + 4], what[32];
	const char *name, *text;
	bool ok = true, *flag;

	for (pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		key = yaml_document_get_node(ld->doc, pair->key);
		value = yaml_document_get_node(ld->doc, pair->value);
		if (key->type != YAML_SCALAR_NODE) {
			report(ld, key->start_mark,
			       "listen: expected a key name, got %s", kind(key));
			ok = false;
			continue;
		}
		name = (const char *)key->data.scalar.value;
		if (strcmp(name, "address") == 0) {
			address = value;
			continue;
		}
		if (strcmp(name, "proxy_protocol") == 0) {
			flag = &la->proxy_protocol;
		} else if (strcmp(name, "deferred") == 0) {
			flag = &la->deferred;
		} else {
			report(ld, key->start_mark,
			       "listen: unknown key \"%s\" (expected address, "
			       "proxy_protocol or deferred)",
			       printable(name, shown));
			ok = false;
			continue;
		}
		snprintf(what, sizeof what, "listen.%s", name);
		text = scalar_text(ld, what, value);
		if (!text) {
			ok = false;
		} else if (parse_bool(text, flag) < 0) {
			report(ld, value->start_mark,
			       "%s: expected true or false, got \"%s\"", what,
			       printable(text, shown));
			ok = false;
		}
	}
	if (!address) {
		report(ld, map->start_mark, "listen: the mapping has no address");
		return NULL;
	}
	return ok ? address : NULL;
}

static void add_listen(struct loader *ld, const yaml_node_t *node)
{
	struct config *cfg = ld->cfg;
	struct listen_addr la, flags = { .deferred = true };
	char shown[SHOWN_MAX + 4];
	const char *text, *why;
	size_t i;

	if (node->type == YAML_MAPPING_NODE) {
		node = listen_mapping(ld, node, &flags);
		if (!node)
			return;
	}
	text = scalar_text(ld, "listen", node);
	if (!text)
		return;
	if (parse_listen(text, &la, &why) < 0) {
		report(ld, node->start_mark, "listen: %s, got \"%s\"", why,
		       printable(text, shown));
		return;
	}
	la.proxy_protocol = flags.proxy_protocol;
	la.deferred = flags.deferred;
	for (i = 0; i < cfg->listen_count; i++) {
		if (cfg->listen[i].addr_len == la.addr_len &&
		    memcmp(&cfg->listen[i].addr, &la.addr, la.addr_len) == 0) {
			report(ld, node->start_mark,
			       "listen: \"%s\" is given twice", la.text);
			return;
		}
	}
	cfg->listen[cfg->listen_count++] = la;
}

/* metrics.listen: one address, which must not be a file listener's; that
 * is checked once the whole document is read (check_metrics_listen). */
static void set_addr(struct loader *ld, const struct key *k,
		     const yaml_node_t *node)
{
	struct listen_addr *field = field_of(ld->cfg, k);
	char shown[SHOWN_MAX + 4];
	const char *text, *why;

	text = scalar_text(ld, k->name, node);
	if (!text)
		return;
	if (parse_listen(text, field, &why) < 0) {
		report(ld, node->start_mark, "%s: %s, got \"%s\"", k->name, why,
		       printable(text, shown));
		return;
	}
	ld->metrics_mark = node->start_mark;
}

/* Whether binding A and B would clash: the same port (not 0, which the
 * kernel picks apart) on the same address, or on the wildcard. */
static bool same_port(const struct listen_addr *a, const struct listen_addr *b)
{
	const struct sockaddr *sa = (const void *)&a->addr;
	const struct sockaddr *sb = (const void *)&b->addr;

	if (sa->sa_family != sb->sa_family)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)sa;
		const struct sockaddr_in *y = (const void *)sb;

		return x->sin_port != 0 && x->sin_port == y->sin_port &&
		       (x->sin_addr.s_addr == y->sin_addr.s_addr ||
			x->sin_addr.s_addr == htonl(INADDR_ANY) ||
			y->sin_addr.s_addr == htonl(INADDR_ANY));
	} else {
		const struct sockaddr_in6 *x = (const void *)sa;
		const struct sockaddr_in6 *y = (const void *)sb;

		return x->sin6_port != 0 && x->sin6_port == y->sin6_port &&
		       (IN6_ARE_ADDR_EQUAL(&x->sin6_addr, &y->sin6_addr) ||
			IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) ||
			IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr));
	}
}

/* The metrics are never served on a file port. */
static void check_metrics_listen(struct loader *ld)
{
	const struct config *cfg = ld->cfg;
	size_t i;

	if (cfg->metrics_listen.addr_len == 0)
		return;
	for (i = 0; i < cfg->listen_count; i++) {
		if (same_port(&cfg->metrics_listen, &cfg->listen[i])) {
			report(ld, ld->metrics_mark,
			       "metrics.listen: \"%s\" is the file listener "
			       "\"%s\"; the metrics need a port of their own",
			       cfg->metrics_listen.text, cfg->listen[i].text);
			return;
		}
	}
}

/* Replaces the default listen address with one address or a sequence. */
static void set_listen(struct loader *ld, const yaml_node_t *node)
{
	yaml_node_item_t *item;
	const yaml_node_t *elem;

	ld->cfg->listen_count = 0;
	if (node->type == YAML_SCALAR_NODE || node->type == YAML_MAPPING_NODE) {
		add_listen(ld, node);
		return;
	}
	if (node->type != YAML_SEQUENCE_NODE) {
		report(ld, node->start_mark,
		       "listen: expected HOST:PORT, a mapping or a sequence of "
		       "them, got %s",
		       kind(node));
		return;
	}
	if (node->data.sequence.items.start == node->data.sequence.items.top) {
		report(ld, node->start_mark,
		       "listen: needs at least one address");
		return;
	}
	for (item = node->data.sequence.items.start;
	     item < node->data.sequence.items.top; item++) {
		elem = yaml_document_get_node(ld->doc, *item);
		if (ld->cfg->listen_count == FERRY_MAX_LISTEN) {
			report(ld, elem->start_mark,
			       "listen: at most %d addresses are allowed",
			       FERRY_MAX_LISTEN);
			return;
		}
		add_listen(ld, elem);
	}
}

static void set_string(struct loader *ld, const struct key *k,
		       const yaml_node_t *node, const char *text)
{
	char **field = field_of(ld->cfg, k);
	char shown[SHOWN_MAX + 4];
	char *value;

	if (!text[0]) {
		report(ld, node->start_mark, "%s: must not be empty", k->name);
		return;
	}
	if (k->type == KEY_STRING) {
		value = strdup(text);
	} else if (text[0] != '/' && (!ld->base_dir || ld->base_dir[0] != '/')) {
		report(ld, node->start_mark,
		       "%s: expected an absolute path, got \"%s\"", k->name,
		       printable(text, shown));
		return;
	} else {
		value = join_clean(ld->base_dir ? ld->base_dir : "/", text);
	}
	if (!value) {
		ld->oom = true;
		return;
	}
	free(*field);
	*field = value;
}

static void set_enum(struct loader *ld, const struct key *k,
		     const yaml_node_t *node, const char *text)
{
	const struct choice *c;
	char list[128], shown[SHOWN_MAX + 4];
	size_t n = 0;

	for (c = k->choices; c->name; c++) {
		if (strcmp(text, c->name) == 0) {
			store_number(ld->cfg, k, (uint64_t)c->value);
			return;
		}
	}
	for (c = k->choices; c->name && n < sizeof list; c++) {
		const char *sep = c == k->choices ? "" : c[1].name ? ", " : " or ";

		n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", sep,
				      c->name);
	}
	report(ld, node->start_mark, "%s: expected %s, got \"%s\"", k->name,
	       list, printable(text, shown));
}

static void set_number(struct loader *ld, const struct key *k,
		       const yaml_node_t *node, const char *text)
{
	char shown[SHOWN_MAX + 4], bound[32];
	const char *end;
	uint64_t value = 0;
	int rc;

	if (k->type == KEY_BYTES)
		rc = config_parse_size(text, &value);
	else if (k->type == KEY_MS)
		rc = config_parse_duration(text, &value);
	else
		rc = parse_count(text, &value);

	printable(text, shown);
	if (rc == -EINVAL) {
		if (k->type == KEY_BYTES)
			report(ld, node->start_mark,
			       "%s: expected a whole number of B, KiB, MiB or GiB, got \"%s\"",
			       k->name, shown);
		else if (k->type != KEY_MS)
			report(ld, node->start_mark,
			       "%s: expected a whole number, got \"%s\"",
			       k->name, shown);
		else if (parse_digits(text, &value, &end) != -EINVAL && !*end)
			report(ld, node->start_mark,
			       "%s: %s needs a unit: ms, s, m or h", k->name,
			       shown);
		else
			report(ld, node->start_mark,
			       "%s: expected a whole number of ms, s, m or h, got \"%s\"",
			       k->name, shown);
		return;
	}
	if (rc == -ERANGE || value > k->max) {
		format_bound(k, k->max, bound, sizeof bound);
		report(ld, node->start_mark, "%s: %s is above the maximum %s",
		       k->name, shown, bound);
		return;
	}
	if (value < k->min) {
		format_bound(k, k->min, bound, sizeof bound);
		report(ld, node->start_mark, "%s: %s is below the minimum %s",
		       k->name, shown, bound);
		return;
	}
	store_number(ld->cfg, k, value);
}

static void set_value(struct loader *ld, const struct key *k,
		      const yaml_node_t *node)
{
	const char *text;

	ld->seen[k - keys] = true;
	if (k->type == KEY_LISTEN) {
		set_listen(ld, node);
		return;
	}
	if (k->type == KEY_ADDR) {
		set_addr(ld, k, node);
		return;
	}
	text = scalar_text(ld, k->name, node);
	if (!text)
		return;
	switch (k->type) {
	case KEY_PATH:
	case KEY_STRING:
		set_string(ld, k, node, text);
		break;
	case KEY_ENUM:
		set_enum(ld, k, node, text);
		break;
	default:
		set_number(ld, k, node, text);
		break;
	}
}

static const struct key *find_key(const char *name)
{
	const struct key *k;

	for (k = keys; k < keys + KEY_TOTAL; k++) {
		if (strcmp(k->name, name) == 0)
			return k;
	}
	return NULL;
}

/* Whether NAME is a mapping of keys, such as "transfer". */
static bool is_section(const char *name)
{
	size_t len = strlen(name);
	const struct key *k;

	for (k = keys; k < keys + KEY_TOTAL; k++) {
		if (strncmp(k->name, name, len) == 0 && k->name[len] == '.')
			return true;
	}
	return false;
}

/* Returns the key of an earlier pair in MAP spelled like PAIR's, or NULL. */
static const yaml_node_t *earlier_key(struct loader *ld, const yaml_node_t *map,
				      const yaml_node_pair_t *pair)
{
	const yaml_node_t *key = yaml_document_get_node(ld->doc, pair->key);
	const yaml_node_pair_t *p;
	const yaml_node_t *other;

	for (p = map->data.mapping.pairs.start; p < pair; p++) {
		other = yaml_document_get_node(ld->doc, p->key);
		if (other->type == YAML_SCALAR_NODE &&
		    other->data.scalar.length == key->data.scalar.length &&
		    memcmp(other->data.scalar.value, key->data.scalar.value,
			   key->data.scalar.length) == 0)
			return other;
	}
	return NULL;
}

/* Applies each pair of MAP, whose keys are PREFIX's children ("" at the top
 * level), descending into sections. */
static void walk_mapping(struct loader *ld, const yaml_node_t *map,
			 const char *prefix)
{
	const yaml_node_pair_t *pair;
	const yaml_node_t *key, *value, *first;
	const struct key *k;
	char name[64], shown[SHOWN_MAX + 4];
	const char *text;
	int n;

	for (pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		key = yaml_document_get_node(ld->doc, pair->key);
		value = yaml_document_get_node(ld->doc, pair->value);
		if (key->type != YAML_SCALAR_NODE) {
			report(ld, key->start_mark,
			       "expected a key name, got %s", kind(key));
			continue;
		}
		text = (const char *)key->data.scalar.value;
		n = snprintf(name, sizeof name, "%s%s%s", prefix,
			     prefix[0] ? "." : "", text);
		if (n < 0)
			n = 0;
		first = earlier_key(ld, map, pair);
		if (first) {
			report(ld, key->start_mark,
			       "duplicate key \"%s\" (first at %zu:%zu)",
			       printable(name, shown),
			       first->start_mark.line + 1,
			       first->start_mark.column + 1);
			continue;
		}
		/* A name that was cut short, holds a NUL or is already dotted
		 * ("transfer.chunk" at the top) is no key of ours, however it
		 * begins. */
		k = NULL;
		if ((size_t)n < sizeof name && !strchr(text, '.') &&
		    strlen(text) == key->data.scalar.length) {
			k = find_key(name);
			if (!k && is_section(name)) {
				if (value->type == YAML_MAPPING_NODE)
					walk_mapping(ld, value, name);
				else if (!is_null(value))
					report(ld, value->start_mark,
					       "%s: expected a mapping, got %s",
					       name, kind(value));
				continue;
			}
		}
		if (k)
			set_value(ld, k, value);
		else
			report(ld, key->start_mark, "unknown key \"%s\"",
			       printable(name, shown));
	}
}

/* Applies the loaded document to ld->cfg and checks required keys. */
static void apply_document(struct loader *ld)
{
	const yaml_node_t *top = yaml_document_get_root_node(ld->doc);
	yaml_mark_t start = ld->doc->start_mark;
	const struct key *k;

	if (top) {
		if (top->type == YAML_MAPPING_NODE) {
			start = top->start_mark;
			walk_mapping(ld, top, "");
		} else if (!is_null(top)) {
			report(ld, top->start_mark,
			       "expected a mapping of keys at the top level, got %s",
			       kind(top));
			return;
		}
	}
	for (k = keys; k < keys + KEY_TOTAL; k++) {
		if (k->required && !ld->seen[k - keys])
			report(ld, start, "missing required key \"%s\"",
			       k->name);
	}
	check_metrics_listen(ld);
}

/* The line and column of byte OFFSET in TEXT, as libyaml counts them. */
static yaml_mark_t mark_at(const char *text, size_t len, size_t offset)
{
	yaml_mark_t mark = { offset, 0, 0 };
	size_t i;

	for (i = 0; i < offset && i < len; i++) {
		if (text[i] == '\n') {
			mark.line++;
			mark.column = 0;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			/* Columns count characters, not UTF-8 bytes. */
			mark.column++;
		}
	}
	return mark;
}

/* Reports why libyaml could not load the document. */
static void report_yaml_error(struct loader *ld, const yaml_parser_t *parser,
			      const char *text, size_t len)
{
	const char *problem = parser->problem ? parser->problem : "invalid YAML";
	yaml_mark_t mark = parser->problem_mark;

	if (parser->error == YAML_MEMORY_ERROR) {
		ld->oom = true;
		return;
	}
	/* The reader gives a byte offset, not a mark. */
	if (parser->error == YAML_READER_ERROR)
		mark = mark_at(text, len, parser->problem_offset);
	if (parser->context)
		report(ld, mark, "%s (%s at %zu:%zu)", problem, parser->context,
		       parser->context_mark.line + 1,
		       parser->context_mark.column + 1);
	else
		report(ld, mark, "%s", problem);
}

/* Parses TEXT and applies its one document, reporting every error. */
static int load_yaml(struct loader *ld, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	const yaml_node_t *node;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		report_yaml_error(ld, &parser, text, len);
	} else {
		ld->doc = &doc;
		apply_document(ld);
		/* A second document would be silently ignored otherwise. */
		if (yaml_document_get_root_node(&doc)) {
			if (!yaml_parser_load(&parser, &extra)) {
				report_yaml_error(ld, &parser, text, len);
			} else {
				node = yaml_document_get_root_node(&extra);
				if (node)
					report(ld, extra.start_mark,
					       "only one YAML document is allowed");
				yaml_document_delete(&extra);
			}
		}
		ld->doc = NULL;
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	return 0;
}

int config_parse(const char *name, const char *text, size_t len,
		 const char *base_dir, struct config **out,
		 struct config_diag *diag)
{
	struct loader ld = { .name = name, .base_dir = base_dir, .diag = diag };
	int rc;

	ld.cfg = calloc(1, sizeof *ld.cfg);
	if (!ld.cfg) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = set_defaults(ld.cfg);
	if (rc < 0)
		goto fail;
	rc = load_yaml(&ld, text, len);
	if (rc < 0)
		goto fail;
	if (ld.oom) {
		rc = -ENOMEM;
		goto fail;
	}
	if (ld.errors > 0) {
		rc = ld.errors;
		goto fail;
	}
	ld.cfg->file = strdup(name);
	if (!ld.cfg->file) {
		rc = -ENOMEM;
		goto fail;
	}
	*out = ld.cfg;
	return 0;
fail:
	config_free(ld.cfg);
	return rc;
}

/* Reads all of FD into a new buffer. */
static int read_all(int fd, char **text, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf, *grown;
	ssize_t got;
	int rc;

	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap >= CONFIG_FILE_MAX) {
				rc = -EFBIG;
				goto fail;
			}
			grown = realloc(buf, cap * 2);
			if (!grown) {
				rc = -ENOMEM;
				goto fail;
			}
			buf = grown;
			cap *= 2;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			goto fail;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	*text = buf;
	*len = n;
	return 0;
fail:
	free(buf);
	return rc;
}

/* Sets *DIR to the absolute directory holding PATH. */
static int dir_of(const char *path, char **dir)
{
	const char *slash = strrchr(path, '/');
	char cwd[PATH_MAX];
	char *parent;
	int rc = 0;

	if (!slash)
		parent = strdup(".");
	else
		parent = strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (!parent)
		return -ENOMEM;
	if (parent[0] != '/' && !getcwd(cwd, sizeof cwd)) {
		rc = -errno;
		goto fail;
	}
	*dir = join_clean(parent[0] == '/' ? "/" : cwd, parent);
	if (!*dir)
		rc = -ENOMEM;
fail:
	free(parent);
	return rc;
}

int config_load(const char *path, struct config **out,
		struct config_diag *diag)
{
	char *text = NULL, *dir = NULL;
	size_t len = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		diag_add(diag, "%s: cannot open: %s", path, strerror(-rc));
		goto fail;
	}
	rc = read_all(fd, &text, &len);
	close(fd);
	if (rc < 0) {
		diag_add(diag, "%s: cannot read: %s", path, strerror(-rc));
		goto fail;
	}
	rc = dir_of(path, &dir);
	if (rc < 0) {
		diag_add(diag, "%s: cannot find its directory: %s", path,
			 strerror(-rc));
		goto fail;
	}
	rc = config_parse(path, text, len, dir, out, diag);
fail:
	free(dir);
	free(text);
	return rc;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->file);
	free(cfg->root);
	free(cfg->user);
	free(cfg->transfer_log);
	free(cfg);
}

void config_diag_free(struct config_diag *diag)
{
	size_t i;

	if (!diag)
		return;
	for (i = 0; i < diag->count; i++)
		free(diag->lines[i]);
	free(diag->lines);
	diag->lines = NULL;
	diag->count = 0;
}
