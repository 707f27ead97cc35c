#include "topology/host_identity.h"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <string>

#include "common/hash.h"

namespace chorus {

uint64_t hostIdentity() {
  char host[256] = "";
  gethostname(host, sizeof(host) - 1);
  std::string identity = host;
  if (FILE* f = fopen("/proc/sys/kernel/random/boot_id", "r")) {
    char boot[64] = "";
    if (fgets(boot, sizeof(boot), f)) identity += boot;
    fclose(f);
  }
  // The directory, not only its file system: containers may bind different
  // directories of one tmpfs as their /dev/shm.
  struct stat shm {};
  if (stat("/dev/shm", &shm) == 0)
    identity += "/dev/shm:" + std::to_string(shm.st_dev) + ":" + std::to_string(shm.st_ino);
  return hashBytes(identity.data(), identity.size());
}

namespace {

uint64_t gProcessToken = 0;

void drawProcessToken() {
  std::random_device device;
  const uint64_t token = (static_cast<uint64_t>(device()) << 32) ^ device();
  gProcessToken = token == 0 ? 1 : token;
}

}  // namespace

uint64_t processToken() {
  static std::once_flag once;
  std::call_once(once, [] {
    drawProcessToken();
    // A child of fork() is another process: it draws its own (it runs
    // alone then, so no other thread reads the token meanwhile).
    pthread_atfork(nullptr, nullptr, drawProcessToken);
  });
  return gProcessToken;
}

uint64_t pidNamespace() {
  struct stat ns {};
  if (stat("/proc/self/ns/pid", &ns) != 0) return 0;
  return static_cast<uint64_t>(ns.st_ino);
}

}  // namespace chorus
