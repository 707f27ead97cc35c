#include "prefixed_output.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace chorus {
namespace launcher {
namespace {

// A line longer than this is cut into prefixed pieces, which bounds memory
// when a rank writes without newlines.
constexpr size_t kMaxLine = 64 * 1024;

// False when `dest` is gone (EPIPE) or broken.
bool writeAll(int dest, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(dest, data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {  // someone made our stdout non-blocking
      pollfd wait{dest, POLLOUT, 0};
      poll(&wait, 1, -1);
    } else if (!(n < 0 && errno == EINTR)) {
      return false;
    }
  }
  return true;
}

}  // namespace

PrefixedOutput::~PrefixedOutput() {
  for (const Source& source : sources_) ::close(source.fd);
}

void PrefixedOutput::add(int fd, int rank, int dest) {
  sources_.push_back(Source{fd, dest, "[" + std::to_string(rank) + "] ", {}});
}

void PrefixedOutput::addPollFds(std::vector<pollfd>* fds) const {
  for (const Source& source : sources_) fds->push_back(pollfd{source.fd, POLLIN, 0});
}

void PrefixedOutput::service(const std::vector<pollfd>& fds) {
  for (const pollfd& ready : fds) {
    if (ready.revents == 0) continue;
    for (size_t i = 0; i < sources_.size(); ++i) {
      if (sources_[i].fd != ready.fd) continue;
      if (!readFrom(&sources_[i])) drop(i, true);
      break;
    }
  }
  // Nobody reads a broken destination any more: closing the pipes that feed
  // it gives the ranks SIGPIPE/EPIPE, as if they had written to it directly.
  for (size_t i = sources_.size(); i-- > 0;) {
    if (std::find(brokenDests_.begin(), brokenDests_.end(), sources_[i].dest) !=
        brokenDests_.end())
      drop(i, false);
  }
}

void PrefixedOutput::finish() {
  while (!sources_.empty()) drop(sources_.size() - 1, true);
}

bool PrefixedOutput::readFrom(Source* source) {
  char buffer[16384];
  ssize_t n = read(source->fd, buffer, sizeof(buffer));
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (n == 0) return false;
  std::string lines;
  size_t start = 0;
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    if (buffer[i] != '\n') continue;
    lines += source->prefix;
    lines += source->partial;
    lines.append(buffer + start, i + 1 - start);
    source->partial.clear();
    start = i + 1;
  }
  source->partial.append(buffer + start, static_cast<size_t>(n) - start);
  if (source->partial.size() >= kMaxLine) {
    lines += source->prefix + source->partial + "\n";
    source->partial.clear();
  }
  if (!lines.empty()) emit(source->dest, lines);
  return true;
}

void PrefixedOutput::emit(int dest, const std::string& text) {
  if (std::find(brokenDests_.begin(), brokenDests_.end(), dest) != brokenDests_.end()) return;
  if (!writeAll(dest, text.data(), text.size())) brokenDests_.push_back(dest);
}

void PrefixedOutput::drop(size_t index, bool flush) {
  Source& source = sources_[index];
  if (flush && !source.partial.empty())
    emit(source.dest, source.prefix + source.partial + "\n");
  ::close(source.fd);
  sources_.erase(sources_.begin() + static_cast<std::ptrdiff_t>(index));
}

}  // namespace launcher
}  // namespace chorus
