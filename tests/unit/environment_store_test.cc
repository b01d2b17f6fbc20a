// Environment records against a real PostgreSQL: status changes that race.
#include <gtest/gtest.h>

#include "common/db.h"
#include "common/migrate.h"
#include "common/uuid.h"
#include "services/environment/environment_store.h"
#include "tests/support/postgres.h"

namespace examiso::environment {
namespace {

// A reconcile that listed a record as `terminating` must not overwrite a
// destroy finished since: destroying twice answers the same destroyed_at
// (AddressSanitizer's slower pace showed two, 30 ms apart), and a destroyed
// record never becomes `error`.
TEST(EnvironmentStore, AStaleLookNeverUndoesADestroy) {
  PgPoolOptions o;
  o.url = testing::shared_postgres().create_database();
  o.application_name = "environment_store_test";
  PgPool pool(o);
  {
    auto conn = pool.acquire();
    apply_migrations(*conn, "environment", environment_migrations());
  }
  ManualClock clock(from_micros(1770460125000000));
  EnvironmentStore store(pool, clock);
  EnvironmentRecord r;
  r.environment_id = new_uuid();
  r.session_id = new_uuid();
  r.pod_name = "exam-test";
  r.pod_namespace = "exam-sessions";
  r.driver = "local";
  r.node = "here";
  ASSERT_TRUE(store.insert_creating(r, 300000, 100));
  store.set_status(r.environment_id, Status::running);
  store.set_status(r.environment_id, Status::terminating);
  clock.advance(std::chrono::milliseconds(30));
  const EnvironmentRecord destroyed = store.set_status(r.environment_id, Status::destroyed);
  ASSERT_TRUE(destroyed.destroyed_at);

  clock.advance(std::chrono::milliseconds(30));
  EXPECT_FALSE(store.set_status_from(r.environment_id, {Status::terminating}, Status::destroyed));
  EXPECT_FALSE(store.set_status_from(r.environment_id, {Status::running}, Status::error, "sandbox vanished"));
  const EnvironmentRecord again = store.set_status(r.environment_id, Status::destroyed);
  EXPECT_EQ(again.destroyed_at, destroyed.destroyed_at);
  EXPECT_EQ(store.by_id(r.environment_id)->status, Status::destroyed);
  EXPECT_TRUE(store.set_status_from(r.environment_id, {Status::destroyed}, Status::destroyed));
}

}  // namespace
}  // namespace examiso::environment
