/* ferryd: options, configuration, signals, the loop. Nothing else. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/config.h"
#include "common/log.h"
#include "daemon/conn.h"
#include "daemon/metrics.h"
#include "daemon/server.h"
#include "daemon/service.h"
#include "daemon/translog.h"
#include "daemon/workers.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define FERRY_DEFAULT_CONFIG SYSCONFDIR "/ferryd/ferryd.yaml"

/* TimeoutStopSec in systemd/ferryd.service.in: systemd kills ferryd when
 * a stop takes longer. */
#define FERRY_STOP_TIMEOUT_MS 30000

static struct server *server;
static uv_signal_t sig_term, sig_int, sig_hup;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ferryd [-c FILE] [-t] [-h|--help] [-V|--version]\n"
		"  -c FILE   configuration file (default %s)\n"
		"  -t        check the configuration and exit\n"
		"  -h        show this help\n"
		"  -V        show the version\n",
		FERRY_DEFAULT_CONFIG);
}

/* Loads PATH, reporting every error on the diagnostic log (prefixed with
 * CONTEXT when reloading) or on stderr. NULL when it is not valid. */
static struct config *load_config(const char *path, bool reloading)
{
	struct config_diag diag = {0};
	struct config *cfg = NULL;
	size_t i;

	if (config_load(path, &cfg, &diag) != 0) {
		for (i = 0; i < diag.count; i++) {
			if (reloading)
				log_error("reload: %s", diag.lines[i]);
			else
				fprintf(stderr, "%s\n", diag.lines[i]);
		}
		cfg = NULL;
	}
	config_diag_free(&diag);
	return cfg;
}

static void stopped_cb(struct server *srv)
{
	(void)srv;
	metrics_stop();
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&sig_hup, NULL);
}

static void signal_cb(uv_signal_t *handle, int signum)
{
	(void)handle;
	if (signum == SIGHUP) {
		const struct config *old = server_config(server);
		struct config *cfg = load_config(old->file, true);

		if (cfg == NULL) {
			log_error("reload: %s is not valid; keeping the old "
				  "configuration", old->file);
			/* logrotate still needs the log reopened. */
			int rc = translog_open(old->transfer_log,
					       old->log_format);
			if (rc < 0)
				log_error("cannot reopen transfer log %s: %s",
					  old->transfer_log, strerror(-rc));
			return;
		}
		if (strcmp(cfg->metrics_listen.text,
			   old->metrics_listen.text) != 0)
			log_warn("reload: metrics.listen changes only with a "
				 "restart; the metrics stay on \"%s\"",
				 old->metrics_listen.text);
		service_notify("RELOADING=1");
		server_reload(server, cfg);
		service_notify("READY=1");
		return;
	}
	log_info("%s received", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	service_notify("STOPPING=1");
	/* SIGTERM drains first (limits.drain); SIGINT, or a second signal
	 * while draining, stops at once. */
	if (signum == SIGTERM)
		server_drain(server, stopped_cb);
	else
		server_shutdown(server, stopped_cb);
}

/* Raises the soft fd limit to the hard one, and warns when even that is
 * short of what limits.connections allows (a socket and a file each). */
static void check_fd_limit(const struct config *cfg)
{
	struct rlimit rl;
	uint64_t want = cfg->max_connections * 2 + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_warn("the open file limit (%llu) is below what "
			 "limits.connections (%llu) needs (%llu); raise "
			 "LimitNOFILE or lower limits.connections",
			 (unsigned long long)rl.rlim_cur,
			 (unsigned long long)cfg->max_connections,
			 (unsigned long long)want);
}

static void close_walk_cb(uv_handle_t *handle, void *arg)
{
	(void)arg;
	if (!uv_is_closing(handle))
		uv_close(handle, NULL);
}

/* Once bound (and with the root and the logs open) as root where needed,
 * the rest runs as the configured user. */
static int drop_privileges(struct config *cfg)
{
	char why[256];
	int rc;

	rc = service_drop_privileges(cfg->user,
				     strcmp(cfg->transfer_log, "-") == 0 ?
					     NULL : cfg->transfer_log,
				     why, sizeof why);
	if (rc < 0) {
		log_error("%s", why);
		return rc;
	}
	if (geteuid() == 0)
		log_warn("serving as root, as the configuration insists");
	return 0;
}

/* metrics.listen: binds it (before privileges are dropped, and once for
 * every worker: worker 0 serves it) and makes the shared counters. */
static int open_metrics(const struct config *cfg)
{
	const struct listen_addr *la = &cfg->metrics_listen;
	struct sockaddr_storage bound;
	socklen_t len = sizeof bound;
	char name[64];
	int fd = -1;
	int rc;

	if (la->addr_len > 0) {
		fd = server_listen_socket((const struct sockaddr *)&la->addr,
					  la->addr_len, false);
		if (fd < 0) {
			log_error("cannot listen on %s for the metrics: %s",
				  la->text, strerror(-fd));
			return fd;
		}
	}
	rc = metrics_open(cfg->workers, fd);
	if (rc < 0) {
		log_error("cannot map the metrics: %s", strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (fd >= 0 &&
	    getsockname(fd, (struct sockaddr *)&bound, &len) == 0) {
		conn_format_addr((struct sockaddr *)&bound, name, sizeof name);
		log_info("metrics on http://%s/metrics", name);
	}
	return 0;
}

/* Serves CFG on this process's loop until a shutdown ends it: on FDS when
 * a parent bound them (workers), else on what server_start binds. */
static int serve(struct config *cfg, const int *fds, size_t fd_count)
{
	uv_loop_t *loop = uv_default_loop();
	int rc;

	server = server_new();
	if (server == NULL)
		log_error("cannot start: out of memory");
	if (server == NULL ||
	    server_start(server, loop, cfg, fds, fd_count) < 0) {
		config_free(cfg);
		translog_close();
		return 1;
	}
	if (drop_privileges(cfg) < 0)
		return 1;
	rc = metrics_serve(loop);
	if (rc < 0)
		log_error("cannot serve the metrics: %s", uv_strerror(rc));
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_init(loop, &sig_hup);
	uv_signal_start(&sig_term, signal_cb, SIGTERM);
	uv_signal_start(&sig_int, signal_cb, SIGINT);
	uv_signal_start(&sig_hup, signal_cb, SIGHUP);
	log_info("ferryd %s serving %s (%s mode, %u threads)", PACKAGE_VERSION,
		 cfg->root, cfg->mode == FERRY_MODE_SENDFILE ? "sendfile" :
							       "buffered",
		 cfg->threads);
	service_notify("READY=1");

	uv_run(loop, UV_RUN_DEFAULT);

	uv_walk(loop, close_walk_cb, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	if (uv_loop_close(loop) != 0)
		log_warn("handles left open at exit");
	server_free(server);
	translog_close();
	log_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *path = FERRY_DEFAULT_CONFIG;
	bool test_only = false;
	struct config *cfg;
	char threads[16];
	char why[256];
	int opt;
	int rc;

	while ((opt = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ferryd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ferryd: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}

	cfg = load_config(path, false);
	if (cfg == NULL)
		return 1;
	if (cfg->drain_ms + cfg->shutdown_timeout_ms > FERRY_STOP_TIMEOUT_MS)
		log_warn("limits.drain + limits.shutdown_timeout is %llu ms, "
			 "more than the %d ms systemd's ferryd.service waits "
			 "for a stop (TimeoutStopSec)",
			 (unsigned long long)(cfg->drain_ms +
					      cfg->shutdown_timeout_ms),
			 FERRY_STOP_TIMEOUT_MS);
	if (test_only) {
		printf("configuration OK\n");
		config_free(cfg);
		return 0;
	}

	rc = service_check_user(cfg->user, why, sizeof why);
	if (rc < 0) {
		fprintf(stderr, "ferryd: %s\n", why);
		config_free(cfg);
		return 1;
	}

	/* Requests allocate and free the same few sizes all the time: keep the
	 * heap's top instead of trimming it back with brk() after each one. */
	mallopt(M_TRIM_THRESHOLD, 4 << 20);
	mallopt(M_TOP_PAD, 1 << 20);

	/* A client that closes mid-transfer must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	log_set_level(cfg->log_level);
	/* Sized once, on the pool's first use: before any uv_fs or work. */
	snprintf(threads, sizeof threads, "%u", cfg->threads);
	setenv("UV_THREADPOOL_SIZE", threads, 1);
	check_fd_limit(cfg);
	rc = translog_open(cfg->transfer_log, cfg->log_format);
	if (rc < 0) {
		log_error("cannot open transfer log %s: %s", cfg->transfer_log,
			  strerror(-rc));
		config_free(cfg);
		return 1;
	}

	if (open_metrics(cfg) < 0) {
		config_free(cfg);
		translog_close();
		return 1;
	}
	if (cfg->workers > 1) {
		rc = workers_run(cfg, cfg->workers, serve, drop_privileges);
		config_free(cfg);
		translog_close();
		return rc;
	}
	return serve(cfg, NULL, 0);
}
