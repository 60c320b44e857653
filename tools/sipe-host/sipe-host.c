/*
 * sipe-host: a headless libpurple host that runs the real pidgin-sipe
 * protocol plugin (prpl-sipe) against the lab's simulated Lync pool, so a
 * test harness can drive a genuine third-party RCC client.
 *
 * Build (as the test harness does it):
 *   cc -O1 -o sipe-host tools/sipe-host/sipe-host.c $(pkg-config --cflags --libs purple glib-2.0) -rdynamic -ldl
 *
 * Usage:
 *   sipe-host --server HOST:PORT --user katie@contoso.com --dir DIR [--plugins /usr/lib/purple-2]
 *
 * Output on stdout, one line each, flushed per line:
 *   event signed-on
 *   event connection-error <reason text>
 *   event signed-off                  (once per connection; after "quit" at the latest)
 *   event dialing <number>
 *   event error <text>                (host-side failure, then exit code 2)
 *   debug <category>: <line>          (every libpurple debug line; sipe's SIP trace)
 * Commands on stdin, one per line:
 *   dial <number>   place an RCC call (sipe_core_buddy_make_call -> CSTA MakeCall)
 *   quit            sign off and exit 0; EOF on stdin does the same
 */
#define _GNU_SOURCE /* RTLD_NEXT, RTLD_NOLOAD */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <purple.h>

#define UI_ID            "sipe-host"
#define SIPE_PRPL_ID     "prpl-sipe"
#define QUIT_GRACE_MS    200 /* let libpurple finish deferred work after sign-off */
#define QUIT_WATCHDOG_S  5   /* hard limit for a quit to complete */

struct sipe_core_public; /* opaque; sipe's connection protocol data */
typedef void (*make_call_fn)(struct sipe_core_public *sipe_public, const gchar *phone);

static GMainLoop     *main_loop;
static PurpleAccount *account;
static make_call_fn   make_call;
static gboolean       quitting;
static gboolean       signed_off_reported;

/*
 * Debian 12 libxml2 work-around.
 *
 * sipe's XML parser (src/core/sipe-xml.c) passes xmlSAXUserParseMemory() a
 * handler that has only the SAX1 callbacks (startElement, endElement,
 * characters) but is marked SAX2 (initialized = XML_SAX2_MAGIC). With
 * libxml2 2.9.14 as packaged in Debian 12 such a handler receives no element
 * callbacks at all, so every XML body (roaming data, every CSTA response
 * and event) silently parses to nothing; the same handler marked SAX1 works.
 * This is a defect of that package combination, not of the lab.
 *
 * The executable exports its own xmlSAXUserParseMemory (-rdynamic), which
 * the plugin's reference binds to. It passes a copy of the handler marked
 * SAX1 (initialized = 1) to the real function, found with dlsym(RTLD_NEXT).
 * libxml2's headers are not on the harness's include path, so the handler
 * layout is mirrored here; it is libxml2's public ABI (256 bytes on LP64).
 */
typedef struct {
	void        *callbacks[27]; /* internalSubset ... externalSubset */
	unsigned int initialized;   /* XML_SAX2_MAGIC (0xDEEDBEAF) or anything (SAX1) */
	void        *sax2_ext[4];   /* _private, startElementNs, endElementNs, serror */
} host_sax_handler;

typedef int (*sax_parse_fn)(void *sax, void *user_data, const char *buffer, int size);

int xmlSAXUserParseMemory(void *sax, void *user_data, const char *buffer, int size);
int xmlSAXUserParseMemory(void *sax, void *user_data, const char *buffer, int size)
{
	static sax_parse_fn real_parse;
	host_sax_handler copy;

	if (!real_parse &&
	    !(real_parse = (sax_parse_fn) dlsym(RTLD_NEXT, "xmlSAXUserParseMemory")))
		return -1;
	if (!sax)
		return real_parse(NULL, user_data, buffer, size);
	memcpy(&copy, sax, sizeof(copy));
	copy.initialized = 1;
	return real_parse(&copy, user_data, buffer, size);
}

/* ---- output ----------------------------------------------------------- */

/* "event <name> [text]", with the text folded onto one line. */
static void emit_event(const char *name, const char *text)
{
	if (text && *text) {
		gchar *one_line = g_strdelimit(g_strdup(text), "\r\n", ' ');
		printf("event %s %s\n", name, g_strstrip(one_line));
		g_free(one_line);
	} else {
		printf("event %s\n", name);
	}
	fflush(stdout);
}

static G_GNUC_NORETURN void fail(const char *text)
{
	emit_event("error", text);
	exit(2);
}

static void emit_signed_off(void)
{
	if (!signed_off_reported) {
		signed_off_reported = TRUE;
		emit_event("signed-off", NULL);
	}
}

/* libpurple debug sink: one "debug <category>: <line>" per message line. */
static void debug_print(PurpleDebugLevel level, const char *category, const char *arg_s)
{
	gchar *msg = g_strchomp(g_strdup(arg_s ? arg_s : ""));
	gchar **lines = g_strsplit(msg, "\n", -1);

	(void) level;
	for (gchar **l = lines; *l; l++)
		printf("debug %s: %s\n", category ? category : "misc", g_strchomp(*l));
	fflush(stdout);
	g_strfreev(lines);
	g_free(msg);
}

static gboolean debug_is_enabled(PurpleDebugLevel level, const char *category)
{
	(void) level; (void) category;
	return TRUE;
}

static PurpleDebugUiOps debug_ops = { debug_print, debug_is_enabled, NULL, NULL, NULL, NULL };

/* With purple_debug_set_enabled(TRUE) libpurple also g_print()s each debug
 * message itself; drop that copy so stdout stays machine-readable. */
static void discard_print(const gchar *text)
{
	(void) text;
}

/* ---- event loop UI ops on the GLib main loop ---------------------------- */

#define READ_COND  (G_IO_IN | G_IO_HUP | G_IO_ERR)
#define WRITE_COND (G_IO_OUT | G_IO_HUP | G_IO_ERR | G_IO_NVAL)

typedef struct {
	PurpleInputFunction func;
	gpointer            data;
} input_closure;

static gboolean input_dispatch(GIOChannel *source, GIOCondition cond, gpointer user_data)
{
	input_closure *c = user_data;
	int purple_cond = 0;

	if (cond & READ_COND)
		purple_cond |= PURPLE_INPUT_READ;
	if (cond & WRITE_COND)
		purple_cond |= PURPLE_INPUT_WRITE;
	c->func(c->data, g_io_channel_unix_get_fd(source), purple_cond);
	return TRUE;
}

static guint host_input_add(gint fd, PurpleInputCondition cond,
			    PurpleInputFunction func, gpointer data)
{
	input_closure *c = g_new0(input_closure, 1);
	GIOChannel *channel = g_io_channel_unix_new(fd);
	GIOCondition gcond = 0;
	guint id;

	c->func = func;
	c->data = data;
	if (cond & PURPLE_INPUT_READ)
		gcond |= READ_COND;
	if (cond & PURPLE_INPUT_WRITE)
		gcond |= WRITE_COND;
	id = g_io_add_watch_full(channel, G_PRIORITY_DEFAULT, gcond, input_dispatch, c, g_free);
	g_io_channel_unref(channel);
	return id;
}

static PurpleEventLoopUiOps eventloop_ops = {
	g_timeout_add, g_source_remove,          /* timeout_add, timeout_remove */
	host_input_add, g_source_remove,         /* input_add, input_remove */
	NULL,                                    /* input_get_error: libpurple uses getsockopt */
	g_timeout_add_seconds,                   /* timeout_add_seconds */
	NULL, NULL, NULL
};

/* Core UI ops: install the debug sink before the subsystems start logging. */
static void core_debug_ui_init(void)
{
	purple_debug_set_ui_ops(&debug_ops);
}

static PurpleCoreUiOps core_ops = { NULL, core_debug_ui_init, NULL, NULL, NULL, NULL, NULL, NULL };

/* ---- connection signals ------------------------------------------------- */

static void on_signed_on(PurpleConnection *gc, gpointer data)
{
	(void) gc; (void) data;
	signed_off_reported = FALSE;
	emit_event("signed-on", NULL);
}

static void on_signed_off(PurpleConnection *gc, gpointer data)
{
	(void) gc; (void) data;
	emit_signed_off();
}

static void on_connection_error(PurpleConnection *gc, PurpleConnectionError err,
				const gchar *desc, gpointer data)
{
	(void) gc; (void) err; (void) data;
	emit_event("connection-error", desc ? desc : "unknown error");
}

/* ---- commands ------------------------------------------------------------ */

static gboolean quit_loop_cb(gpointer data)
{
	(void) data;
	g_main_loop_quit(main_loop);
	return FALSE;
}

static gboolean watchdog_cb(gpointer data)
{
	(void) data;
	emit_signed_off();
	_exit(0);
}

static void alarm_exit(int sig)
{
	(void) sig;
	_exit(0);
}

static void host_quit(void)
{
	if (quitting)
		return;
	quitting = TRUE;
	g_timeout_add_seconds(QUIT_WATCHDOG_S, watchdog_cb, NULL);

	/* Disabling the account disconnects synchronously: sipe sends MonitorStop
	 * and BYE to the CSTA gateway, un-SUBSCRIBEs, un-REGISTERs, flushes the
	 * socket and closes it; then libpurple emits "signed-off". */
	purple_account_set_enabled(account, UI_ID, FALSE);
	emit_signed_off(); /* no-op if the connection already reported it */
	g_timeout_add(QUIT_GRACE_MS, quit_loop_cb, NULL);
}

static void host_dial(const char *number)
{
	PurpleConnection *gc = purple_account_get_connection(account);
	struct sipe_core_public *core = gc ? purple_connection_get_protocol_data(gc) : NULL;

	if (!*number) {
		debug_print(PURPLE_DEBUG_WARNING, UI_ID, "dial: no number given, ignored");
	} else if (!core) {
		debug_print(PURPLE_DEBUG_WARNING, UI_ID, "dial: not connected, ignored");
	} else {
		/* Without an established CSTA dialog sipe only logs
		 * "sip_csta_make_call: no dialog with CSTA, exiting." */
		emit_event("dialing", number);
		make_call(core, number);
	}
}

static void handle_command(gchar *line)
{
	g_strstrip(line);
	if (!*line)
		return;
	if (g_str_equal(line, "quit")) {
		host_quit();
	} else if (g_str_has_prefix(line, "dial") && (!line[4] || g_ascii_isspace(line[4]))) {
		host_dial(g_strchug(line + 4));
	} else {
		gchar *msg = g_strdup_printf("unknown command: %s", line);
		debug_print(PURPLE_DEBUG_WARNING, UI_ID, msg);
		g_free(msg);
	}
}

static gboolean stdin_cb(GIOChannel *source, GIOCondition cond, gpointer data)
{
	gchar *line = NULL;
	GIOStatus status = g_io_channel_read_line(source, &line, NULL, NULL, NULL);

	(void) cond; (void) data;
	/* One line per call; GLib calls again while buffered input remains. */
	if (status == G_IO_STATUS_NORMAL && line)
		handle_command(line);
	g_free(line);
	if (status == G_IO_STATUS_NORMAL || status == G_IO_STATUS_AGAIN)
		return TRUE;
	host_quit(); /* EOF or read error */
	return FALSE;
}

/* ---- start-up -------------------------------------------------------------- */

static G_GNUC_NORETURN void usage(void)
{
	fail("usage: sipe-host --server HOST:PORT --user USER@DOMAIN --dir DIR [--plugins DIR]");
}

/* sipe_core_buddy_make_call() (src/api/sipe-core.h, src/core/sip-csta.c):
 *   void sipe_core_buddy_make_call(struct sipe_core_public *, const gchar *phone);
 * libpurple opens plugins with G_MODULE_BIND_LOCAL, so the symbol is not in
 * the global namespace and cannot be linked against; look it up in the
 * already loaded plugin instead (dlopen with RTLD_NOLOAD just returns it). */
static make_call_fn lookup_make_call(PurplePlugin *plugin)
{
	void *handle = plugin->path ? dlopen(plugin->path, RTLD_LAZY | RTLD_NOLOAD) : NULL;
	return handle ? (make_call_fn) dlsym(handle, "sipe_core_buddy_make_call") : NULL;
}

int main(int argc, char **argv)
{
	const char *server = NULL, *user = NULL, *dir = NULL, *plugins = "/usr/lib/purple-2";
	static int handle;
	void *conn_handle;
	PurplePlugin *plugin;
	GIOChannel *in;
	gchar *username;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN); /* a peer closing the socket must not kill us */

	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			usage();
		if (g_str_equal(argv[i], "--server"))
			server = argv[i + 1];
		else if (g_str_equal(argv[i], "--user"))
			user = argv[i + 1];
		else if (g_str_equal(argv[i], "--dir"))
			dir = argv[i + 1];
		else if (g_str_equal(argv[i], "--plugins"))
			plugins = argv[i + 1];
		else
			usage();
	}
	if (!server || !user || !dir)
		usage();
	if (g_mkdir_with_parents(dir, 0700) != 0)
		fail("cannot create the user directory");

	/* libpurple: private user dir, debug sink, GLib event loop. sipe logs
	 * the contents of SIP messages only when debugging is "unsafe". */
	g_set_print_handler(discard_print);
	purple_util_set_user_dir(dir);
	purple_debug_set_enabled(TRUE);
	purple_debug_set_verbose(TRUE);
	purple_debug_set_unsafe(TRUE);
	purple_core_set_ui_ops(&core_ops);
	purple_eventloop_set_ui_ops(&eventloop_ops);
	purple_plugins_add_search_path(plugins);
	main_loop = g_main_loop_new(NULL, FALSE);
	if (!purple_core_init(UI_ID))
		fail("libpurple initialisation failed");
	purple_set_blist(purple_blist_new());
	purple_blist_load();

	/* Protocol plugins are loaded while libpurple probes the search path. */
	if (!(plugin = purple_plugins_find_with_id(SIPE_PRPL_ID)))
		fail("plugin prpl-sipe not found");
	if (!(make_call = lookup_make_call(plugin)))
		fail("sipe_core_buddy_make_call not found in the sipe plugin");

	conn_handle = purple_connections_get_handle();
	purple_signal_connect(conn_handle, "signed-on", &handle, PURPLE_CALLBACK(on_signed_on), NULL);
	purple_signal_connect(conn_handle, "signed-off", &handle, PURPLE_CALLBACK(on_signed_off), NULL);
	purple_signal_connect(conn_handle, "connection-error", &handle,
			      PURPLE_CALLBACK(on_connection_error), NULL);

	/* sipe's account name is "<sign-in name>,<login>"; the user is both.
	 * Settings (src/purple/purple-plugin-common.c): "server" = host[:port],
	 * "transport" = auto|tls|tcp. Authentication stays at sipe's default
	 * (NTLM) and is never used when the registrar answers the first,
	 * unauthenticated REGISTER with 200. "dont-publish" stops calendar
	 * publishing, which would start Exchange autodiscovery over HTTPS
	 * towards the user's real domain a minute after sign-in. */
	username = g_strdup_printf("%s,%s", user, user);
	if (!(account = purple_accounts_find(username, SIPE_PRPL_ID))) {
		if (!(account = purple_account_new(username, SIPE_PRPL_ID)))
			fail("account creation failed");
		purple_accounts_add(account);
	}
	g_free(username);
	purple_account_set_password(account, "lab");
	purple_account_set_string(account, "server", server);
	purple_account_set_string(account, "transport", "tcp");
	purple_account_set_bool(account, "dont-publish", TRUE);

	in = g_io_channel_unix_new(STDIN_FILENO);
	g_io_channel_set_encoding(in, NULL, NULL); /* raw bytes, no UTF-8 checks */
	g_io_add_watch(in, READ_COND, stdin_cb, NULL);
	g_io_channel_unref(in);

	/* A new account's status is "available", so enabling it connects. */
	purple_account_set_enabled(account, UI_ID, TRUE);
	if (purple_account_is_disconnected(account))
		purple_account_connect(account);

	g_main_loop_run(main_loop);

	signal(SIGALRM, alarm_exit); /* a hung shutdown still exits 0 */
	alarm(QUIT_WATCHDOG_S);
	purple_core_quit();
	return 0;
}
