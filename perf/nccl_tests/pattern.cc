#include "pattern.h"

#include <cmath>

namespace perf {

namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

Pattern::Pattern(ncclDataType_t type, bool reducing, Reduction reduction, int nranks, uint64_t seed)
    : info_(&typeInfo(type)), reducing_(reducing), reduction_(reduction), nranks_(nranks),
      seed_(seed) {}

uint64_t Pattern::hash(size_t i, uint64_t salt) const {
  return mix(seed_ * 0x2545f4914f6cdd1dull ^ mix(static_cast<uint64_t>(i) ^ (salt << 56)));
}

double Pattern::spread(size_t i, int rank) const {
  const uint64_t h = hash(i, 1 + static_cast<uint64_t>(rank));
  const uint64_t range = static_cast<uint64_t>(info_->range);
  if (!info_->isSigned) return static_cast<double>(h % (range + 1));
  return static_cast<double>(h % (2 * range + 1)) - static_cast<double>(range);
}

Pattern::Pair Pattern::pair(size_t i) const {
  const uint64_t h = hash(i, 0);
  Pair p;
  p.r1 = static_cast<int>(h % static_cast<uint64_t>(nranks_));
  p.r2 = nranks_ < 2 ? -1
                     : (p.r1 + 1 + static_cast<int>((h >> 20) % static_cast<uint64_t>(nranks_ - 1))) %
                           nranks_;
  // Magnitudes 1..3 (sum, avg), 1..2 (premulsum, prod); signs only for signed types.
  const int levels = reduction_ == Reduction::Sum || reduction_ == Reduction::Avg ? 3 : 2;
  double v[2];
  for (int k = 0; k < 2; ++k) {
    const uint64_t bits = h >> (40 + 8 * k);
    v[k] = 1 + static_cast<double>(bits % static_cast<uint64_t>(levels));
    if (info_->isSigned && ((bits >> 4) & 1)) v[k] = -v[k];
  }
  p.v1 = v[0];
  p.v2 = v[1];
  return p;
}

double Pattern::input(int rank, size_t i) const {
  if (!reducing_) return spread(i, rank);
  switch (reduction_) {
    case Reduction::Max:
    case Reduction::Min: {
      // The winner holds the extreme; the others sit 1..3 away from it, inside the range.
      const Pair p = pair(i);
      const double r = info_->range;
      const double lo = info_->isSigned ? -r : 0;
      const double extreme = reduction_ == Reduction::Max
                                 ? lo + 3 + static_cast<double>(hash(i, 2) % static_cast<uint64_t>(r - lo - 2))
                                 : lo + static_cast<double>(hash(i, 2) % static_cast<uint64_t>(r - lo - 2));
      if (rank == p.r1) return extreme;
      const double gap = 1 + static_cast<double>((static_cast<uint64_t>(rank) + hash(i, 3)) % 3);
      return reduction_ == Reduction::Max ? extreme - gap : extreme + gap;
    }
    case Reduction::Prod: {
      const Pair p = pair(i);
      return rank == p.r1 ? p.v1 : rank == p.r2 ? p.v2 : 1;
    }
    default: {  // sum, avg, premulsum
      const Pair p = pair(i);
      return rank == p.r1 ? p.v1 : rank == p.r2 ? p.v2 : 0;
    }
  }
}

double Pattern::reduced(size_t i) const {
  const Pair p = pair(i);
  const double w = p.r2 < 0 ? 0 : p.v2;
  switch (reduction_) {
    case Reduction::Max:
    case Reduction::Min:
      return input(p.r1, i);
    case Reduction::Prod:
      return p.v1 * (p.r2 < 0 ? 1 : p.v2);
    case Reduction::PreMulSum:
      return p.v1 * scalar(p.r1) + (p.r2 < 0 ? 0 : w * scalar(p.r2));
    case Reduction::Avg:
      return info_->isFloat ? (p.v1 + w) / nranks_ : std::trunc((p.v1 + w) / nranks_);
    default:
      return p.v1 + w;
  }
}

double Pattern::tolerance(size_t i) const {
  if (!reducing_ || reduction_ != Reduction::Avg || !info_->isFloat) return 0;
  // 1/nranks is rounded to the datatype, each product with it is rounded,
  // and so is their sum: each rounding is at most half a unit in the last
  // place of the contributions (v + w)/nranks. Two units, plus subnormal
  // spacing for tiny results in fp8, bound them all.
  const Pair p = pair(i);
  const double magnitude = (std::fabs(p.v1) + (p.r2 < 0 ? 0 : std::fabs(p.v2))) / nranks_;
  return std::ldexp(magnitude, 1 - info_->mantissaBits) + 2 * info_->denormMin;
}

}  // namespace perf
