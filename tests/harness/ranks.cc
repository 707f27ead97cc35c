#include "harness/ranks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "transport/shm/cross_memory.h"

namespace chorus::test {

bool RankContext::check(bool ok, const std::string& message) {
  if (!ok) failures.push_back("rank " + std::to_string(rank) + ": " + message);
  return ok;
}

bool RankContext::checkNccl(ncclResult_t result, const std::string& what) {
  if (result == ncclSuccess) return true;
  return check(false, what + " returned " + ncclGetErrorString(result) + " (" +
                          ncclGetLastError(nullptr) + ")");
}

namespace {

std::vector<ncclUniqueId> makeIds(const RankOptions& options) {
  std::vector<ncclUniqueId> ids(options.idCount < 1 ? 1 : options.idCount);
  for (ncclUniqueId& id : ids) {
    memset(&id, 0, sizeof(id));
    if (options.createId && ncclGetUniqueId(&id) != ncclSuccess) {
      fprintf(stderr, "harness: ncclGetUniqueId failed: %s\n", ncclGetLastError(nullptr));
      abort();
    }
  }
  return ids;
}

bool writeAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool readAll(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

struct Child {
  pid_t pid;
  int rank;
  int readFd;
  std::string output;
  bool done = false;
  int status = 0;
};

void drain(Child& child) {
  char buffer[4096];
  for (;;) {
    ssize_t n = read(child.readFd, buffer, sizeof(buffer));
    if (n <= 0) break;
    child.output.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace

std::vector<std::string> runRankProcesses(int nranks, const RankBody& body, RankOptions options) {
  const size_t idBytes = sizeof(ncclUniqueId) * static_cast<size_t>(options.idCount < 1 ? 1 : options.idCount);
  std::vector<int> idPipes(2 * static_cast<size_t>(nranks));
  for (int rank = 0; rank < nranks; ++rank)
    if (pipe(&idPipes[2 * rank]) != 0) abort();
  fflush(stdout);
  fflush(stderr);
  // Ranks start together once all are forked: no rank reaches the root (and
  // makes its thread allocate) while the parent is still forking, since a
  // child forked at that moment could inherit an allocator lock held by that
  // thread (glibc guards against this, sanitizer runtimes may not).
  int gate[2];
  if (pipe(gate) != 0) abort();
  std::vector<Child> children;
  for (int rank = 0; rank < nranks; ++rank) {
    int fds[2];
    if (pipe(fds) != 0) abort();
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      close(gate[1]);
      char go;
      while (read(gate[0], &go, 1) < 0 && errno == EINTR) {
      }
      close(gate[0]);
      RankContext ctx;
      ctx.rank = rank;
      ctx.nranks = nranks;
      if (rank == 0) {
        ctx.ids = makeIds(options);
        for (int peer = 1; peer < nranks; ++peer)
          if (!writeAll(idPipes[2 * peer + 1], ctx.ids.data(), idBytes)) _exit(4);
      } else {
        ctx.ids.resize(idBytes / sizeof(ncclUniqueId));
        if (!readAll(idPipes[2 * rank], ctx.ids.data(), idBytes)) _exit(5);  // rank 0 died first
      }
      for (int fd : idPipes) close(fd);
      ctx.id = ctx.ids[0];
      body(ctx);
      std::string text;
      for (const std::string& f : ctx.failures) text += f + "\n";
      if (!text.empty() && write(fds[1], text.data(), text.size()) < 0) _exit(3);
      _exit(ctx.failures.empty() ? 0 : 1);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);  // drained while the ranks run
    Child child{};
    child.pid = pid;
    child.rank = rank;
    child.readFd = fds[0];
    children.push_back(child);
  }
  for (int fd : idPipes) close(fd);
  close(gate[0]);
  close(gate[1]);  // opens the gate: every child's read returns

  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(options.timeoutSeconds));
  size_t remaining = children.size();
  while (remaining > 0) {
    for (Child& child : children) {
      if (child.done) continue;
      drain(child);
      pid_t got = waitpid(child.pid, &child.status, WNOHANG);
      if (got == child.pid) {
        drain(child);
        close(child.readFd);
        child.done = true;
        --remaining;
      }
    }
    if (remaining == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (Child& child : children) {
        if (child.done) continue;
        kill(child.pid, SIGKILL);
        waitpid(child.pid, &child.status, 0);
        close(child.readFd);
        child.done = true;
        child.output += "rank " + std::to_string(child.rank) + ": killed after " +
                        std::to_string(options.timeoutSeconds) + " s (hang)\n";
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }

  std::vector<std::string> failures;
  for (Child& child : children) {
    size_t start = 0;
    while (start < child.output.size()) {
      size_t end = child.output.find('\n', start);
      if (end == std::string::npos) end = child.output.size();
      if (end > start) failures.push_back(child.output.substr(start, end - start));
      start = end + 1;
    }
    if (WIFSIGNALED(child.status))
      failures.push_back("rank " + std::to_string(child.rank) + ": died of signal " +
                         std::to_string(WTERMSIG(child.status)));
    else if (WIFEXITED(child.status) && WEXITSTATUS(child.status) != 0 && child.output.empty())
      failures.push_back("rank " + std::to_string(child.rank) + ": exited with " +
                         std::to_string(WEXITSTATUS(child.status)));
  }
  return failures;
}

std::vector<std::string> runRankThreads(int nranks, const RankBody& body, RankOptions options) {
  std::vector<ncclUniqueId> ids = makeIds(options);
  std::vector<RankContext> contexts(nranks);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < nranks; ++rank) {
    contexts[rank].rank = rank;
    contexts[rank].nranks = nranks;
    contexts[rank].ids = ids;
    contexts[rank].id = ids[0];
    threads.emplace_back([&body, &contexts, rank] { body(contexts[rank]); });
  }
  for (std::thread& t : threads) t.join();
  std::vector<std::string> failures;
  for (RankContext& ctx : contexts)
    failures.insert(failures.end(), ctx.failures.begin(), ctx.failures.end());
  return failures;
}

std::string joinFailures(const std::vector<std::string>& failures) {
  std::string text;
  for (const std::string& f : failures) text += f + "\n";
  return text;
}

ncclComm_t initRankComm(RankContext& ctx) {
  ncclComm_t comm = nullptr;
  if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "ncclCommInitRank"))
    return nullptr;
  return comm;
}

void barrier(RankContext& ctx, ncclComm_t comm) {
  float one = 1;
  ctx.checkNccl(ncclAllReduce(&one, &one, 1, ncclFloat32, ncclSum, comm, nullptr), "barrier");
}

bool lastErrorHas(const std::string& text) {
  return std::string(ncclGetLastError(nullptr)).find(text) != std::string::npos;
}

bool crossMemoryAllowed(std::string* why) {
  int ready[2];
  if (pipe(ready) != 0) {
    *why = "pipe failed";
    return false;
  }
  const pid_t child = fork();
  if (child == 0) {
    char byte;
    close(ready[1]);
    _exit(read(ready[0], &byte, 1) < 0 ? 1 : 0);  // until the parent closes its end
  }
  close(ready[0]);
  const bool allowed =
      child > 0 && chorus::canReachProcess(child, chorus::crossMemoryProbeAddress(), why);
  close(ready[1]);
  if (child > 0) waitpid(child, nullptr, 0);
  return allowed;
}

int pickFreePort(int family) {
  int fd = socket(family, SOCK_STREAM, 0);
  sockaddr_storage storage{};
  socklen_t len;
  if (family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&storage);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*a);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), len) != 0) abort();
  getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len);
  int port = family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port)
                                : ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  close(fd);
  return port;
}

ScopedEnv::ScopedEnv(const char* name, const char* value) : name_(name) {
  if (const char* old = getenv(name)) {
    hadOld_ = true;
    old_ = old;
  }
  if (value) setenv(name, value, 1);
  else unsetenv(name);
}

ScopedEnv::~ScopedEnv() {
  if (hadOld_) setenv(name_.c_str(), old_.c_str(), 1);
  else unsetenv(name_.c_str());
}

}  // namespace chorus::test
