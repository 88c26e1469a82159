/* jack_io: play a raw float32 mono file into a JACK port, or record a JACK
 * port into a raw float32 mono file, on a named JACK server. Used by
 * bench/jacktrip_plc.py, which compiles it with gcc against libjack.
 *
 *   jack_io play SERVER DEST_PORT IN.f32 TIMEOUT_S
 *   jack_io rec  SERVER SRC_PORT OUT.f32 NFRAMES TIMEOUT_S
 *
 * Both print "ready" once connected and running, then, when done,
 * "first_usecs U" (jack_get_cycle_times' current_usecs of the cycle that
 * played or recorded the first frame; CLOCK_MONOTONIC microseconds, the same
 * clock for every JACK server on this machine) and "frames N". Exit status 0
 * on success, 1 on error or timeout. The process callbacks only copy samples
 * between preallocated buffers. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <jack/jack.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static jack_port_t* g_port;
static float* g_buf;
static size_t g_len;
static atomic_size_t g_pos;
static atomic_int g_armed;
static atomic_int g_done;
static atomic_uint_least64_t g_first_usecs;
static int g_play;

static uint64_t cycle_usecs(jack_client_t* c) {
  jack_nframes_t frames = 0;
  jack_time_t cur = 0, next = 0;
  float period = 0.0f;
  if (jack_get_cycle_times(c, &frames, &cur, &next, &period) != 0) cur = jack_get_time();
  return (uint64_t)cur;
}

static int process(jack_nframes_t n, void* arg) {
  jack_client_t* c = (jack_client_t*)arg;
  float* p = (float*)jack_port_get_buffer(g_port, n);
  size_t pos = atomic_load(&g_pos);
  if (!atomic_load(&g_armed) || pos >= g_len) {
    if (g_play) memset(p, 0, n * sizeof(float));
    if (atomic_load(&g_armed) && pos >= g_len) atomic_store(&g_done, 1);
    return 0;
  }
  if (pos == 0) atomic_store(&g_first_usecs, cycle_usecs(c));
  size_t k = g_len - pos < n ? g_len - pos : n;
  if (g_play) {
    memcpy(p, g_buf + pos, k * sizeof(float));
    if (k < n) memset(p + k, 0, (n - k) * sizeof(float));
  } else {
    memcpy(g_buf + pos, p, k * sizeof(float));
  }
  atomic_store(&g_pos, pos + k);
  return 0;
}

static int fail(const char* what) {
  fprintf(stderr, "jack_io: %s\n", what);
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 6)
    return fail("usage: play SERVER DEST IN.f32 TIMEOUT | rec SERVER SRC OUT.f32 N TIMEOUT");
  g_play = strcmp(argv[1], "play") == 0;
  if (!g_play && (strcmp(argv[1], "rec") != 0 || argc < 7)) return fail("bad mode/arguments");
  const char* server = argv[2];
  const char* other = argv[3];
  const char* path = argv[4];
  double timeout_s = atof(g_play ? argv[5] : argv[6]);

  if (g_play) {
    FILE* f = fopen(path, "rb");
    if (!f) return fail("cannot open input");
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    g_len = (size_t)bytes / sizeof(float);
    g_buf = (float*)malloc(g_len * sizeof(float) + 1);
    if (!g_buf || fread(g_buf, sizeof(float), g_len, f) != g_len) return fail("cannot read input");
    fclose(f);
  } else {
    g_len = (size_t)strtoull(argv[5], NULL, 10);
    g_buf = (float*)calloc(g_len + 1, sizeof(float));
    if (!g_buf) return fail("out of memory");
  }

  jack_status_t st;
  jack_client_t* c = jack_client_open(g_play ? "bench_play" : "bench_rec",
                                      JackServerName | JackNoStartServer, &st, server);
  if (!c) return fail("cannot open JACK client");
  g_port = jack_port_register(c, g_play ? "out" : "in", JACK_DEFAULT_AUDIO_TYPE,
                              g_play ? JackPortIsOutput : JackPortIsInput, 0);
  if (!g_port) return fail("cannot register port");
  jack_set_process_callback(c, process, c);
  if (jack_activate(c) != 0) return fail("cannot activate");
  const char* mine = jack_port_name(g_port);
  int rc = g_play ? jack_connect(c, mine, other) : jack_connect(c, other, mine);
  if (rc != 0) {
    jack_client_close(c);
    return fail("cannot connect ports");
  }
  printf("ready\n");
  fflush(stdout);
  atomic_store(&g_armed, 1);

  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int ok = 0;
  for (;;) {
    if (atomic_load(&g_done)) {
      ok = 1;
      break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 > timeout_s) break;
    usleep(2000);
  }
  if (g_play && ok) usleep(50000); /* let the last zeros go out */
  jack_deactivate(c);
  jack_client_close(c);
  printf("first_usecs %llu\nframes %zu\n", (unsigned long long)atomic_load(&g_first_usecs),
         (size_t)atomic_load(&g_pos));
  fflush(stdout);
  if (!g_play) {
    FILE* f = fopen(path, "wb");
    if (!f || fwrite(g_buf, sizeof(float), g_len, f) != g_len) return fail("cannot write output");
    fclose(f);
  }
  free(g_buf);
  if (!ok) return fail("timed out");
  return 0;
}
