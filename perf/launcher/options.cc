#include "options.h"

#include <cerrno>
#include <cstdlib>

#include "environment.h"

namespace chorus {
namespace launcher {
namespace {

constexpr int kMaxRanks = 4096;  // far above what one machine can run; catches typos
constexpr double kMaxTimeout = 1e8;  // about 3 years; keeps deadlines far from overflow

bool parseInt(const std::string& text, long min, long max, long* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long value = strtol(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || value < min || value > max) return false;
  *out = value;
  return true;
}

bool parseSeconds(const std::string& text, double* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double value = strtod(text.c_str(), &end);
  if (errno != 0 || *end != '\0' || !(value > 0 && value <= kMaxTimeout)) return false;
  *out = value;
  return true;
}

// One option with its value, whichever way it was written: "--np 4",
// "--np=4", "-n 4", "-n4".
struct Arg {
  std::string name;    // as written, without any "=value"
  std::string value;
  bool hasValue = false;
};

}  // namespace

ParseResult parseOptions(int argc, char** argv, Options* out, std::string* error) {
  Options options;
  bool sawRanks = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string text = argv[i];
    if (text == "--") {
      ++i;
      break;
    }
    if (text.size() < 2 || text[0] != '-') break;  // the program
    Arg arg;
    if (text.compare(0, 2, "--") == 0) {
      size_t eq = text.find('=');
      arg.name = text.substr(0, eq);
      arg.hasValue = eq != std::string::npos;
      if (arg.hasValue) arg.value = text.substr(eq + 1);
    } else if (text == "-np") {  // mpirun's spelling
      arg.name = "-n";
    } else {
      arg.name = text.substr(0, 2);
      arg.hasValue = text.size() > 2;
      if (arg.hasValue) arg.value = text.substr(2);
    }
    bool takesValue = arg.name == "-n" || arg.name == "--np" || arg.name == "--timeout" ||
                      arg.name == "--port" || arg.name == "--addr" || arg.name == "-x";
    bool isFlag = arg.name == "-p" || arg.name == "--prefix" || arg.name == "-h" ||
                  arg.name == "--help";
    if (!takesValue && !isFlag) {
      *error = "unknown option '" + text + "'";
      return ParseResult::kError;
    }
    if (isFlag && arg.hasValue) {
      *error = "option '" + arg.name + "' takes no value (got '" + text + "')";
      return ParseResult::kError;
    }
    if (takesValue && !arg.hasValue) {
      if (i + 1 >= argc) {
        *error = "option '" + arg.name + "' needs a value";
        return ParseResult::kError;
      }
      arg.value = argv[++i];
    }
    long number = 0;
    if (arg.name == "-h" || arg.name == "--help") {
      return ParseResult::kHelp;
    } else if (arg.name == "-p" || arg.name == "--prefix") {
      options.prefix = true;
    } else if (arg.name == "-n" || arg.name == "--np") {
      if (!parseInt(arg.value, 1, kMaxRanks, &number)) {
        *error = "-n/--np wants a number of ranks from 1 to " + std::to_string(kMaxRanks) +
                 ", not '" + arg.value + "'";
        return ParseResult::kError;
      }
      options.ranks = static_cast<int>(number);
      sawRanks = true;
    } else if (arg.name == "--timeout") {
      if (!parseSeconds(arg.value, &options.timeoutSeconds)) {
        *error = "--timeout wants a number of seconds > 0 (at most 1e8), not '" + arg.value + "'";
        return ParseResult::kError;
      }
    } else if (arg.name == "--port") {
      if (!parseInt(arg.value, 1, 65535, &number)) {
        *error = "--port wants a TCP port from 1 to 65535, not '" + arg.value + "'";
        return ParseResult::kError;
      }
      options.port = static_cast<int>(number);
    } else if (arg.name == "--addr") {
      if (arg.value.empty()) {
        *error = "--addr wants an address, not an empty string";
        return ParseResult::kError;
      }
      options.addr = arg.value;
    } else {  // -x
      size_t eq = arg.value.find('=');
      std::string name = arg.value.substr(0, eq);
      if (eq == std::string::npos || name.empty()) {
        *error = "-x wants NAME=VALUE, not '" + arg.value + "'";
        return ParseResult::kError;
      }
      if (isLauncherVariable(name)) {
        *error = "-x cannot set " + name + ": chorusrun sets it for every rank" +
                 (name.compare(0, 7, "MASTER_") == 0 ? " (use --addr/--port)" : "");
        return ParseResult::kError;
      }
      options.extraEnv.emplace_back(name, arg.value.substr(eq + 1));
    }
  }
  if (!sawRanks) {
    *error = "the number of ranks is required (-n N)";
    return ParseResult::kError;
  }
  if (i >= argc) {
    *error = "no program to run";
    return ParseResult::kError;
  }
  options.command.assign(argv + i, argv + argc);
  *out = std::move(options);
  return ParseResult::kRun;
}

void printUsage(FILE* to) {
  fputs(
      "usage: chorusrun [options] -n N program [args...]\n"
      "\n"
      "Starts N copies of program on this machine, each with RANK, WORLD_SIZE,\n"
      "LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT and GROUP_RANK=0 set\n"
      "(torchrun's names), and stops them all when one fails.\n"
      "\n"
      "options (they end at '--' or at the program):\n"
      "  -n, --np N         number of ranks (required, >= 1; -np also works)\n"
      "  -p, --prefix       prefix every output line of rank r with \"[r] \"\n"
      "                     (stdout to stdout, stderr to stderr)\n"
      "  --timeout SECONDS  stop every rank after SECONDS and exit 124\n"
      "  --addr ADDR        MASTER_ADDR (default 127.0.0.1)\n"
      "  --port PORT        MASTER_PORT (default: a port free on ADDR now)\n"
      "  -x NAME=VALUE      add NAME=VALUE to every rank's environment (repeatable)\n"
      "  -h, --help         this text\n"
      "\n"
      "exit status: 0 when every rank exited 0; otherwise the exit code of the\n"
      "first rank that failed (128+N if signal N killed it); 124 timeout;\n"
      "126 program not executable; 127 program not found; 2 bad options;\n"
      "1 chorusrun itself failed; 128+N when chorusrun got signal N and every\n"
      "rank still exited 0. See docs/launching.md.\n",
      to);
}

}  // namespace launcher
}  // namespace chorus
