// A small JSON writer: objects, arrays, strings, numbers; commas and
// escaping are its business, the layout is the caller's.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace perf {

class JsonWriter {
 public:
  JsonWriter& beginObject(const char* key = nullptr);
  JsonWriter& endObject();
  JsonWriter& beginArray(const char* key = nullptr);
  JsonWriter& endArray();
  JsonWriter& value(const char* key, const std::string& s);
  JsonWriter& value(const char* key, const char* s) { return value(key, std::string(s)); }
  JsonWriter& value(const char* key, double d);  // NaN and infinities as null
  JsonWriter& value(const char* key, long long n);
  JsonWriter& value(const char* key, int n) { return value(key, static_cast<long long>(n)); }
  JsonWriter& value(const char* key, size_t n) { return value(key, static_cast<long long>(n)); }
  JsonWriter& boolean(const char* key, bool b);
  JsonWriter& null(const char* key);
  // Already-rendered JSON (an array another writer built), inserted as is.
  JsonWriter& raw(const char* key, const std::string& json);
  const std::string& text() const { return out_; }

 private:
  void prefix(const char* key);  // comma, then "key": inside objects
  static std::string quote(const std::string& s);
  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written yet
};

}  // namespace perf
