/* libFuzzer target for the config loader (config.c): the input is the YAML
 * file. A config that loads must hold only values the daemon can use, and one
 * that does not must come with one "FILE:LINE:COL: message" per error
 * counted. The value parsers the loader uses are fed the input as well. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "daemon/config.h"
#include "fuzz.h"

#define NAME "fuzz.yaml"
#define BASE_DIR "/srv/ferry"

/* A root as join_clean leaves it: absolute, and no empty, "." or ".."
 * component. */
static void check_root(const char *root)
{
	const char *p;

	FUZZ_CHECK(root != NULL && root[0] == '/');
	for (p = root; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		FUZZ_CHECK(p[1] != '/');
		FUZZ_CHECK(strncmp(p, "/./", 3) != 0 && strcmp(p, "/.") != 0);
		FUZZ_CHECK(strncmp(p, "/../", 4) != 0 && strcmp(p, "/..") != 0);
	}
}

static void check_config(const struct config *cfg)
{
	size_t i;

	FUZZ_CHECK(cfg->file != NULL && strcmp(cfg->file, NAME) == 0);
	check_root(cfg->root);
	FUZZ_CHECK(cfg->listen_count >= 1 &&
		   cfg->listen_count <= FERRY_MAX_LISTEN);
	for (i = 0; i < cfg->listen_count; i++) {
		const struct listen_addr *la = &cfg->listen[i];
		int family = la->addr.ss_family;

		FUZZ_CHECK(memchr(la->text, '\0', sizeof(la->text)) != NULL);
		FUZZ_CHECK((family == AF_INET &&
			    la->addr_len == sizeof(struct sockaddr_in)) ||
			   (family == AF_INET6 &&
			    la->addr_len == sizeof(struct sockaddr_in6)));
	}
	FUZZ_CHECK(cfg->mode == FERRY_MODE_SENDFILE ||
		   cfg->mode == FERRY_MODE_BUFFERED);
	FUZZ_CHECK(cfg->log_format == FERRY_LOG_TEXT ||
		   cfg->log_format == FERRY_LOG_JSON);
	FUZZ_CHECK(cfg->log_level == LOG_LEVEL_ERROR ||
		   cfg->log_level == LOG_LEVEL_WARN ||
		   cfg->log_level == LOG_LEVEL_INFO ||
		   cfg->log_level == LOG_LEVEL_DEBUG);
	FUZZ_CHECK(cfg->chunk_bytes > 0 && cfg->buffer_bytes > 0);
	FUZZ_CHECK(cfg->max_connections > 0 && cfg->max_per_client > 0);
	FUZZ_CHECK(cfg->request_timeout_ms > 0 && cfg->idle_timeout_ms > 0 &&
		   cfg->send_timeout_ms > 0);
	FUZZ_CHECK(cfg->threads > 0 && cfg->workers > 0);
	FUZZ_CHECK(cfg->transfer_log != NULL && cfg->transfer_log[0] != '\0');
	FUZZ_CHECK(cfg->user == NULL || cfg->user[0] != '\0');
}

/* Each message names the file and a position. */
static void check_diag(const struct config_diag *diag, int errors)
{
	size_t i, prefix = strlen(NAME ":");
	unsigned long line, col;
	char *end;

	FUZZ_CHECK(diag->count == (size_t)errors);
	for (i = 0; i < diag->count; i++) {
		const char *msg = diag->lines[i];

		FUZZ_CHECK(strncmp(msg, NAME ":", prefix) == 0);
		line = strtoul(msg + prefix, &end, 10);
		FUZZ_CHECK(line >= 1 && *end == ':');
		col = strtoul(end + 1, &end, 10);
		FUZZ_CHECK(col >= 1 && strncmp(end, ": ", 2) == 0);
	}
}

/* The value parsers, on the input as one string. */
static void check_values(const uint8_t *data, size_t size)
{
	char text[256];
	struct listen_addr la;
	uint64_t value;
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	int rc;

	memcpy(text, data, n);
	text[n] = '\0';
	rc = config_parse_size(text, &value);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
	rc = config_parse_duration(text, &value);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ERANGE);
	if (config_parse_listen(text, &la) == 0)
		FUZZ_CHECK(strcmp(la.text, text) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct config_diag diag = { NULL, 0 };
	struct config *cfg = NULL, *cfg_abs = NULL;
	int rc;

	check_values(data, size);

	rc = config_parse(NAME, text, size, BASE_DIR, &cfg, &diag);
	FUZZ_CHECK(rc >= 0);
	if (rc > 0) {
		FUZZ_CHECK(cfg == NULL);
		check_diag(&diag, rc);
		config_diag_free(&diag);
		return 0;
	}
	FUZZ_CHECK(cfg != NULL && diag.count == 0);
	check_config(cfg);

	/* Without a directory to resolve against, only an absolute root
	 * loads, and to the same place. */
	rc = config_parse(NAME, text, size, NULL, &cfg_abs, &diag);
	FUZZ_CHECK(rc == 0 || rc == 1);
	if (rc == 0)
		FUZZ_CHECK(strcmp(cfg_abs->root, cfg->root) == 0);
	else
		check_diag(&diag, rc);
	config_free(cfg_abs);
	config_free(cfg);
	config_diag_free(&diag);
	return 0;
}
