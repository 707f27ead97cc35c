// --prefix: the ranks' stdout and stderr arrive on pipes and leave on
// chorusrun's stdout and stderr, each line led by "[rank] ". Lines are written
// whole, so lines of different ranks never mix within a line.
#pragma once

#include <poll.h>

#include <string>
#include <vector>

namespace chorus {
namespace launcher {

class PrefixedOutput {
 public:
  PrefixedOutput() = default;
  PrefixedOutput(const PrefixedOutput&) = delete;
  PrefixedOutput& operator=(const PrefixedOutput&) = delete;
  ~PrefixedOutput();

  // Takes ownership of `fd` (non-blocking) and forwards it to `dest`.
  void add(int fd, int rank, int dest);
  // Appends one pollfd per open pipe.
  void addPollFds(std::vector<pollfd>* fds) const;
  // Reads the pipes that poll found ready.
  void service(const std::vector<pollfd>& fds);
  bool anyOpen() const { return !sources_.empty(); }
  // Writes what is left (a last line without newline gets one) and closes
  // every pipe.
  void finish();

 private:
  struct Source {
    int fd;
    int dest;
    std::string prefix;   // "[rank] "
    std::string partial;  // the start of a line whose newline has not come yet
  };
  bool readFrom(Source* source);  // false at end of file
  void emit(int dest, const std::string& text);
  void drop(size_t index, bool flush);

  std::vector<Source> sources_;
  std::vector<int> brokenDests_;  // destinations that returned EPIPE
};

}  // namespace launcher
}  // namespace chorus
