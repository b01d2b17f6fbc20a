#pragma once
#include <google/protobuf/timestamp.pb.h>

#include "common/clock.h"

namespace examiso {

inline google::protobuf::Timestamp to_proto(TimePoint t) {
  google::protobuf::Timestamp ts;
  const int64_t us = to_micros(t);
  const int64_t secs = us >= 0 ? us / 1'000'000 : (us - 999'999) / 1'000'000;
  ts.set_seconds(secs);
  ts.set_nanos(static_cast<int32_t>((us - secs * 1'000'000) * 1000));
  return ts;
}

inline TimePoint from_proto(const google::protobuf::Timestamp& ts) {
  return from_micros(ts.seconds() * 1'000'000 + ts.nanos() / 1000);
}

}  // namespace examiso
