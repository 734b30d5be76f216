/* csub: a counting MQTT subscriber for the broker ceiling (libmosquitto).
 *
 * Connects (MQTT 5, clean start, Receive Maximum = --window), subscribes to --topic at
 * --qos, prints "ready" once the SUBACK is in, then counts messages (and the points in
 * them: the number of '{' in the payload) until -n messages arrived or nothing arrived
 * for --idle seconds. Prints one JSON line with the wall-clock times of the first and last
 * message. libmosquitto acknowledges QoS 1 as soon as the message is read.
 *
 * Build: cc -O2 -o csub csub.c -lmosquitto   (Debian: libmosquitto-dev)
 */
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long count = 0, points = 0, expected = 0; static double t_first = 0, t_last = 0;
static int subscribed = 0;

static double now_real(void) { struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts); return ts.tv_sec + ts.tv_nsec / 1e9; }

static void on_connect(struct mosquitto *m, void *ud, int rc, int f, const mosquitto_property *p) {
    (void)f; (void)p;
    if (rc) { fprintf(stderr, "csub: refused: %s\n", mosquitto_reason_string(rc)); exit(3); }
    const char **sub = ud;
    mosquitto_subscribe_v5(m, NULL, sub[0], atoi(sub[1]), 0, NULL);
}
static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted, const mosquitto_property *p) {
    (void)m; (void)ud; (void)mid; (void)n; (void)granted; (void)p;
    subscribed = 1; printf("ready\n"); fflush(stdout);
}
static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg, const mosquitto_property *p) {
    (void)m; (void)ud; (void)p;
    double t = now_real();
    if (!count) t_first = t;
    t_last = t; count++;
    const char *s = msg->payload; int n = 0;
    for (int i = 0; i < msg->payloadlen; i++) n += s[i] == '{';
    points += n;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *user = NULL, *pw = NULL, *topic = "devices/+/data", *qos = "1";
    int port = 1883, window = 1000; double idle = 10, timeout = 600;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--host")) { host = v; i++; }
        else if (!strcmp(a, "--port")) { port = atoi(v); i++; }
        else if (!strcmp(a, "-u")) { user = v; i++; }
        else if (!strcmp(a, "-P")) { pw = v; i++; }
        else if (!strcmp(a, "--topic")) { topic = v; i++; }
        else if (!strcmp(a, "--qos")) { qos = v; i++; }
        else if (!strcmp(a, "-n")) { expected = atol(v); i++; }
        else if (!strcmp(a, "--window")) { window = atoi(v); i++; }
        else if (!strcmp(a, "--idle")) { idle = atof(v); i++; }
        else if (!strcmp(a, "--timeout")) { timeout = atof(v); i++; }
        else { fprintf(stderr, "csub: unknown argument %s\n", a); return 2; }
    }
    mosquitto_lib_init();
    const char *sub[2] = {topic, qos};
    char cid[64]; snprintf(cid, sizeof cid, "csub-%d", (int)getpid());
    struct mosquitto *m = mosquitto_new(cid, true, (void *)sub);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_int_option(m, MOSQ_OPT_RECEIVE_MAXIMUM, window);
    if (user) mosquitto_username_pw_set(m, user, pw);
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_subscribe_v5_callback_set(m, on_subscribe);
    mosquitto_message_v5_callback_set(m, on_message);
    if (mosquitto_connect_bind_v5(m, host, port, 60, NULL, NULL)) { fprintf(stderr, "csub: cannot connect\n"); return 3; }
    double start = now_real();
    while (1) {
        int rc = mosquitto_loop(m, 100, 1000);
        if (rc) { fprintf(stderr, "csub: %s\n", mosquitto_strerror(rc)); return 4; }
        double t = now_real();
        if (expected && count >= expected) break;
        if (count && t - t_last > idle) break;
        if (t - start > timeout) break;
    }
    printf("{\"t_first\": %.6f, \"t_last\": %.6f, \"messages\": %ld, \"points\": %ld}\n", t_first, t_last, count, points);
    mosquitto_disconnect(m); mosquitto_loop(m, 50, 1); mosquitto_destroy(m); mosquitto_lib_cleanup();
    return 0;
}
