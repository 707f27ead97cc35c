// chorusrun's command line: what to start, how many, and with what.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace chorus {
namespace launcher {

struct Options {
  int ranks = 0;                     // -n/--np: required, >= 1
  bool prefix = false;               // -p/--prefix: "[rank] " before every output line
  double timeoutSeconds = 0;         // --timeout: 0 means none
  int port = 0;                      // --port: 0 means find a free one
  std::string addr = "127.0.0.1";    // --addr: MASTER_ADDR
  std::vector<std::pair<std::string, std::string>> extraEnv;  // -x NAME=VALUE, in order
  std::vector<std::string> command;  // the program and its arguments
};

enum class ParseResult { kRun, kHelp, kError };

// Options end at "--" or at the first argument that is not an option, so the
// program's own options pass through untouched. On kError, *error says why.
ParseResult parseOptions(int argc, char** argv, Options* out, std::string* error);

void printUsage(FILE* to);

}  // namespace launcher
}  // namespace chorus
