#pragma once
// What an environment driver does: local sandboxes now, Kubernetes pods later.
// Each environment is named by its environment_id; drivers keep no state that
// a restart would lose (they find their sandboxes again by listing).
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/errors.h"
#include "services/environment/sandbox/frames.h"

namespace examiso::environment {

struct EnvironmentSpec {
  std::string environment_id;
  std::string session_id;
  std::string name;  // pod_name, also the hostname inside
  uid_t host_uid = 0;
  std::string image;
  int64_t memory_limit_bytes = 512ll << 20;
  int64_t pids_limit = 256;
  int64_t cpu_millis = 1000;
  int64_t home_size_bytes = 256ll << 20;
  int64_t tmp_size_bytes = 64ll << 20;
  std::vector<std::string> egress_allow;
  std::string setup_script;
  std::string runtime_class;
  int64_t duration_seconds = 0;
  // Made ahead for the warm pool: the setup runs, the candidate's shell waits
  // for claim().
  bool pooled = false;
};

// One client's connection to an environment's keeper (its frames are
// sandbox/frames.h): the candidate's terminal, or an observer's.
class Terminal {
 public:
  virtual ~Terminal() = default;
  // Output as it comes (the recent output first); "" after `timeout` with
  // nothing new; nullopt once the terminal is gone. What else came is kept
  // for news().
  virtual std::optional<std::string> read(std::chrono::milliseconds timeout) = 0;
  // One frame to the keeper; false once it is gone.
  virtual bool send(std::string_view frame) = 0;
  bool write(std::string_view input) { return send(sandbox::encode_frame(sandbox::FrameType::input, input)); }
  bool resize(uint16_t cols, uint16_t rows) { return send(sandbox::encode_resize(cols, rows)); }
  // A descriptor that polls readable whenever read() would not wait, so that
  // one thread can wait on many terminals.
  virtual int wait_fd() const = 0;
  // Once read() has ended: whether because a newer client opened the terminal.
  bool opened_elsewhere() const { return taken_; }

  // Besides output: the staff's messages, and the number of observers when it changed.
  struct News {
    std::vector<std::string> messages;
    std::optional<uint32_t> watchers;
  };
  News news() { return std::exchange(news_, {}); }

 protected:
  // The output in the complete frames `reader` holds (one frame's is not
  // copied); the rest goes to news. Sets `ended` at `taken` or a corrupt stream.
  std::string absorb(sandbox::FrameReader& reader, bool& ended);

 private:
  bool taken_ = false;
  News news_;
};

class SandboxDriver {
 public:
  virtual ~SandboxDriver() = default;
  virtual std::string name() const = 0;
  // Ready when it returns. Throws Error ENVIRONMENT_CREATE_FAILED
  // (details.reason) and then leaves nothing allocated.
  virtual void create(const EnvironmentSpec& spec, std::chrono::steady_clock::time_point deadline) = 0;
  virtual bool alive(const std::string& environment_id) = 0;
  // Idempotent: destroying what is not there is not an error.
  virtual void destroy(const std::string& environment_id) = 0;
  // Whether pooled environments can be made and claimed.
  virtual bool pools() const { return false; }
  // A pooled environment becomes a session's, named `name` (its hostname):
  // its shell starts. Throws Error ENVIRONMENT_NOT_FOUND when that fails.
  virtual void claim(const std::string& environment_id, const std::string& name) {
    (void)environment_id;
    (void)name;
    throw Error("INTERNAL_ERROR", "this driver has no warm pool");
  }
  // Every environment this driver has on its node, by id.
  virtual std::vector<std::string> list() = 0;
  // Whether its environments carry a deadline of their own (a pod's
  // activeDeadlineSeconds, a backstop should every cleanup fail), which then
  // follows the session's once its clock runs: follow_deadline, idempotent.
  virtual bool follows_deadlines() const { return false; }
  virtual void follow_deadline(const std::string& environment_id, TimePoint deadline) {
    (void)environment_id;
    (void)deadline;
  }
  // Throws Error ENVIRONMENT_NOT_FOUND when it is not running.
  virtual std::unique_ptr<Terminal> attach(const std::string& environment_id, uint16_t cols, uint16_t rows) = 0;
  // A connection to the keeper's staff socket (observers, messages); nothing
  // sent yet. Throws as attach().
  virtual std::unique_ptr<Terminal> open_observer(const std::string& environment_id) = 0;
};

}  // namespace examiso::environment
