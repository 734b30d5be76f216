/* cpub: a fast MQTT publisher for the benchmarks (libmosquitto, one thread).
 *
 * One connection per device (username = device id, password = token, read from --creds),
 * each publishing to devices/<id>/data (--format json, TagoIO JSON) or to
 * devices/<id>/senml/cbor (--format senml-cbor: a SenML CBOR pack of --points records
 * {0: name, 1: "Cel", 2: value, 6: time in seconds}), messages assigned round-robin: message k goes to
 * device k % D and carries variable (k / D) % V. Each message has a unique device time
 * (--base-ms + k milliseconds; + k*10 + j for the j-th point of an array message), so every
 * point is a distinct key in InfluxDB and the stored count can be checked exactly.
 *
 * Flow control: at most --window messages per connection are outstanding (QoS 1: not yet
 * PUBACKed; QoS 0: not yet written to the socket), matching max_inflight, so the publisher
 * never builds an unbounded queue in memory. --rate caps the total message rate (0: as fast
 * as possible). Prints one JSON line: wall-clock times of the first publish and of the last
 * completion, messages sent, completed and refused (PUBACK reason code >= 0x80).
 *
 * Build: cc -O2 -o cpub cpub.c -lmosquitto   (Debian: libmosquitto-dev)
 */
#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXDEV 256

typedef struct {
    struct mosquitto *mosq;
    char id[128];
    char token[128];
    char topic[160];
    long outstanding;
    int connected;
} dev_t_;

static dev_t_ devs[MAXDEV];
static int ndev = 0;
static long total = 100000, completed = 0, refused = 0, sent = 0;
static int qos = 1, points_per_msg = 1, variables = 25, window = 1000, senml_cbor = 0;
static long long base_ms = 0;
static double rate = 0;

static double now_real(void) {
    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
static double now_mono(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags, const mosquitto_property *p) {
    dev_t_ *d = ud; (void)m; (void)flags; (void)p;
    if (rc != 0) { fprintf(stderr, "cpub: %s refused: %s\n", d->id, mosquitto_reason_string(rc)); exit(3); }
    d->connected = 1;
}
static void on_publish(struct mosquitto *m, void *ud, int mid, int rc, const mosquitto_property *p) {
    dev_t_ *d = ud; (void)m; (void)mid; (void)p;
    d->outstanding--; completed++;
    if (rc >= 0x80) refused++;
}

static int iso_ms(char *out, size_t n, long long ms) {
    time_t s = (time_t)(ms / 1000); struct tm tm; gmtime_r(&s, &tm);
    return snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* One point, ~110 bytes: {"variable":"temperature_sensor_07","value":21.437,"unit":"celsius","time":"..."} */
static int point(char *out, size_t n, long k, long long t) {
    char ts[40]; iso_ms(ts, sizeof ts, t);
    long v = (k * 7919) % 100000;
    return snprintf(out, n, "{\"variable\":\"temperature_sensor_%02ld\",\"value\":%ld.%03ld,"
                    "\"unit\":\"celsius\",\"time\":\"%s\"}",
                    (k / ndev) % variables, v / 1000, v % 1000, ts);
}

/* CBOR heads (RFC 8949): major type and argument, shortest form. */
static int cbor_head(unsigned char *out, int major, unsigned long v) {
    if (v < 24) { out[0] = (unsigned char)(major << 5 | v); return 1; }
    if (v < 256) { out[0] = (unsigned char)(major << 5 | 24); out[1] = (unsigned char)v; return 2; }
    out[0] = (unsigned char)(major << 5 | 25); out[1] = (unsigned char)(v >> 8); out[2] = (unsigned char)v;
    return 3;
}
static int cbor_double(unsigned char *out, double d) {
    unsigned long long bits; memcpy(&bits, &d, 8);
    out[0] = 0xfb;
    for (int i = 0; i < 8; i++) out[1 + i] = (unsigned char)(bits >> (56 - 8 * i));
    return 9;
}
/* The same points as the JSON array form, as a SenML CBOR pack: variable names, values and
 * device times (seconds, millisecond precision) as the JSON message k would carry. */
static int senml_pack(unsigned char *buf, long k) {
    int len = cbor_head(buf, 4, points_per_msg);
    for (int j = 0; j < points_per_msg; j++) {
        long kk = points_per_msg == 1 ? k : k * points_per_msg + j;
        long var = points_per_msg == 1 ? (k / ndev) % variables : kk % variables;
        char name[32]; int nl = snprintf(name, sizeof name, "temperature_sensor_%02ld", var);
        long v = (kk * 7919) % 100000;
        len += cbor_head(buf + len, 5, 4);
        len += cbor_head(buf + len, 0, 0); len += cbor_head(buf + len, 3, nl);
        memcpy(buf + len, name, nl); len += nl;
        len += cbor_head(buf + len, 0, 1); len += cbor_head(buf + len, 3, 3);
        memcpy(buf + len, "Cel", 3); len += 3;
        len += cbor_head(buf + len, 0, 2); len += cbor_double(buf + len, v / 1000.0);
        len += cbor_head(buf + len, 0, 6); len += cbor_double(buf + len, (base_ms + kk) / 1000.0);
    }
    return len;
}

static int payload(char *buf, size_t n, long k) {
    if (senml_cbor) return senml_pack((unsigned char *)buf, k);
    if (points_per_msg == 1) return point(buf, n, k, base_ms + k);
    int len = 0; buf[len++] = '[';
    for (int j = 0; j < points_per_msg; j++) {
        if (j) buf[len++] = ',';
        /* the j-th point uses variable (k*P + j) so an array covers several variables */
        char one[256]; long kk = k * points_per_msg + j;
        char ts[40]; iso_ms(ts, sizeof ts, base_ms + kk);
        long v = (kk * 7919) % 100000;
        int l = snprintf(one, sizeof one, "{\"variable\":\"temperature_sensor_%02ld\",\"value\":%ld.%03ld,"
                         "\"unit\":\"celsius\",\"time\":\"%s\"}", kk % variables, v / 1000, v % 1000, ts);
        memcpy(buf + len, one, l); len += l;
    }
    buf[len++] = ']'; buf[len] = 0;
    return len;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *creds = NULL; int port = 1883; double settle_timeout = 600;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--host")) { host = v; i++; }
        else if (!strcmp(a, "--port")) { port = atoi(v); i++; }
        else if (!strcmp(a, "--creds")) { creds = v; i++; }
        else if (!strcmp(a, "-n")) { total = atol(v); i++; }
        else if (!strcmp(a, "--qos")) { qos = atoi(v); i++; }
        else if (!strcmp(a, "--points")) { points_per_msg = atoi(v); i++; }
        else if (!strcmp(a, "--variables")) { variables = atoi(v); i++; }
        else if (!strcmp(a, "--window")) { window = atoi(v); i++; }
        else if (!strcmp(a, "--rate")) { rate = atof(v); i++; }
        else if (!strcmp(a, "--base-ms")) { base_ms = atoll(v); i++; }
        else if (!strcmp(a, "--timeout")) { settle_timeout = atof(v); i++; }
        else if (!strcmp(a, "--format")) {
            if (!strcmp(v, "senml-cbor")) senml_cbor = 1;
            else if (strcmp(v, "json")) { fprintf(stderr, "cpub: --format json|senml-cbor\n"); return 2; }
            i++;
        }
        else { fprintf(stderr, "cpub: unknown argument %s\n", a); return 2; }
    }
    if (!creds) { fprintf(stderr, "usage: cpub --creds FILE (lines: device_id token) [-n N] ...\n"); return 2; }
    if (!base_ms) base_ms = (long long)(now_real() * 1000);
    FILE *f = fopen(creds, "r");
    if (!f) { perror(creds); return 2; }
    while (ndev < MAXDEV && fscanf(f, "%127s %127s", devs[ndev].id, devs[ndev].token) == 2) ndev++;
    fclose(f);
    if (!ndev) { fprintf(stderr, "cpub: no credentials in %s\n", creds); return 2; }
    mosquitto_lib_init();
    for (int i = 0; i < ndev; i++) {
        dev_t_ *d = &devs[i];
        char cid[64]; snprintf(cid, sizeof cid, "cpub-%d-%d", (int)getpid(), i);
        d->mosq = mosquitto_new(cid, true, d);
        mosquitto_int_option(d->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
        mosquitto_int_option(d->mosq, MOSQ_OPT_SEND_MAXIMUM, window);
        mosquitto_max_inflight_messages_set(d->mosq, window);
        mosquitto_username_pw_set(d->mosq, d->id, d->token);
        mosquitto_connect_v5_callback_set(d->mosq, on_connect);
        mosquitto_publish_v5_callback_set(d->mosq, on_publish);
        snprintf(d->topic, sizeof d->topic, senml_cbor ? "devices/%s/senml/cbor" : "devices/%s/data",
                 d->id);
        if (mosquitto_connect_bind_v5(d->mosq, host, port, 60, NULL, NULL) != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "cpub: cannot connect to %s:%d\n", host, port); return 3;
        }
    }
    struct pollfd *pfd = calloc(ndev, sizeof *pfd);
    int connected = 0; double t0 = now_mono();
    while (connected < ndev) {          /* wait for every CONNACK */
        for (int i = 0; i < ndev; i++) mosquitto_loop(devs[i].mosq, 10, 1);
        connected = 0; for (int i = 0; i < ndev; i++) connected += devs[i].connected;
        if (now_mono() - t0 > 10) { fprintf(stderr, "cpub: no CONNACK\n"); return 3; }
    }
    static char buf[65536];
    double start_real = now_real(), start = now_mono(), last_misc = start;
    while (completed < total) {
        double t = now_mono();
        long allowed = rate > 0 ? (long)((t - start) * rate) + 1 : total;
        if (allowed > total) allowed = total;
        /* message k goes to device k % D: publish in order while that device has room */
        while (sent < allowed && devs[sent % ndev].outstanding < window) {
            dev_t_ *d = &devs[sent % ndev];
            int len = payload(buf, sizeof buf, sent);
            int rc = mosquitto_publish_v5(d->mosq, NULL, d->topic, len, buf, qos, false, NULL);
            if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "cpub: publish: %s\n", mosquitto_strerror(rc)); return 4; }
            d->outstanding++; sent++;
        }
        int blocked = (sent >= allowed) || devs[sent % ndev].outstanding >= window || sent >= total;
        for (int i = 0; i < ndev; i++) {
            pfd[i].fd = mosquitto_socket(devs[i].mosq);
            pfd[i].events = POLLIN | (mosquitto_want_write(devs[i].mosq) ? POLLOUT : 0);
            pfd[i].revents = 0;
        }
        int timeout_ms = blocked ? (rate > 0 && sent < total ? 1 : 50) : 0;
        int n = poll(pfd, ndev, timeout_ms);
        if (n < 0 && errno != EINTR) { perror("poll"); return 5; }
        for (int i = 0; i < ndev; i++) {
            if (pfd[i].revents & POLLIN) mosquitto_loop_read(devs[i].mosq, 1);
            if (pfd[i].revents & POLLOUT) mosquitto_loop_write(devs[i].mosq, 1);
            if (pfd[i].revents & (POLLERR | POLLHUP)) { fprintf(stderr, "cpub: connection lost\n"); return 5; }
        }
        if (t - last_misc > 1) { for (int i = 0; i < ndev; i++) mosquitto_loop_misc(devs[i].mosq); last_misc = t; }
        if (t - start > settle_timeout) { fprintf(stderr, "cpub: timeout\n"); break; }
    }
    double end_real = now_real();
    for (int i = 0; i < ndev; i++) { mosquitto_disconnect(devs[i].mosq); mosquitto_loop(devs[i].mosq, 50, 1); mosquitto_destroy(devs[i].mosq); }
    printf("{\"t_first\": %.6f, \"t_done\": %.6f, \"sent\": %ld, \"completed\": %ld, \"refused\": %ld, "
           "\"qos\": %d, \"points_per_msg\": %d, \"devices\": %d, \"rate\": %.1f, \"base_ms\": %lld}\n",
           start_real, end_real, sent, completed, refused, qos, points_per_msg, ndev, rate, base_ms);
    mosquitto_lib_cleanup();
    return 0;
}
