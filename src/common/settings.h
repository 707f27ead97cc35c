// Every environment setting Chorus reads, in one table (settings.cc), each with
// its default and one line of documentation. docs/settings.md lists the same
// table; a unit test keeps the two in step. NCCL's names are kept wherever
// NCCL has the setting; Chorus's own start with CHORUS_.
#pragma once

#include <cstdint>
#include <string>

namespace chorus {

struct Setting {
  const char* name;
  const char* defaultValue;  // "" when unset means "not set"
  const char* doc;
};

// The whole table, for documentation and tests.
const Setting* allSettings(int* count);

// The value from the environment, or the default. Reading a name that is not
// in the table is a programming error and aborts with a message.
std::string settingString(const char* name);
// As an integer; a value that is not a number logs a warning and gives the
// default.
int64_t settingInt(const char* name);
// True when the environment sets the variable (to anything, even empty).
bool settingIsSet(const char* name);

}  // namespace chorus
