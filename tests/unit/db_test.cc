// common/db and common/migrate against a real PostgreSQL: queries, errors,
// transactions, losing and regaining the server, concurrent migrations.
#include <gtest/gtest.h>

#include <thread>

#include "common/db.h"
#include "common/migrate.h"
#include "tests/support/postgres.h"

namespace examiso {
namespace {

using testing::PostgresCluster;

PgPoolOptions options(const std::string& url, int size = 4) {
  PgPoolOptions o;
  o.url = url;
  o.size = size;
  o.application_name = "db_test";
  o.acquire_timeout = std::chrono::milliseconds(500);
  return o;
}

TEST(PgPool, RunsParameterisedStatements) {
  PgPool pool(options(testing::shared_postgres().create_database()));
  auto conn = pool.acquire();
  conn->exec("CREATE TABLE t (id int PRIMARY KEY, name text)");
  const std::string hostile = "'); DROP TABLE t; --";
  conn->exec("INSERT INTO t VALUES ($1, $2), ($3, $4)", {1, hostile, 2, std::nullopt});
  const PgResult r = conn->exec("SELECT id, name FROM t ORDER BY id");
  ASSERT_EQ(r.rows(), 2);
  EXPECT_EQ(r.integer(0, 0), 1);
  EXPECT_EQ(r.str(0, 1), hostile);
  EXPECT_TRUE(r.null(1, 1));
  EXPECT_EQ(r.opt(1, 1), std::nullopt);
  EXPECT_EQ(conn->exec("UPDATE t SET name = 'x'").affected(), 2);
}

TEST(PgPool, ClassifiesErrors) {
  PgPool pool(options(testing::shared_postgres().create_database()));
  auto conn = pool.acquire();
  conn->exec("CREATE TABLE t (id int PRIMARY KEY)");
  conn->exec("INSERT INTO t VALUES (1)");
  try {
    conn->exec("INSERT INTO t VALUES (1)");
    FAIL() << "no error";
  } catch (const DbError& e) {
    EXPECT_TRUE(e.unique_violation());
    EXPECT_EQ(e.code(), "INTERNAL_ERROR");
  }
  try {
    conn->exec("SELEC 1");
    FAIL() << "no error";
  } catch (const DbError& e) {
    EXPECT_EQ(e.sqlstate(), "42601");
  }
  // The connection is still usable after statement errors.
  EXPECT_EQ(conn->exec("SELECT 1").integer(0, 0), 1);
}

TEST(PgPool, RollsBackAFailedTransaction) {
  PgPool pool(options(testing::shared_postgres().create_database()));
  auto conn = pool.acquire();
  conn->exec("CREATE TABLE t (id int PRIMARY KEY)");
  EXPECT_THROW(transaction(*conn,
                           [&] {
                             conn->exec("INSERT INTO t VALUES (1)");
                             conn->exec("INSERT INTO t VALUES (1)");
                           }),
               DbError);
  EXPECT_EQ(conn->exec("SELECT count(*) FROM t").integer(0, 0), 0);
  transaction(*conn, [&] { conn->exec("INSERT INTO t VALUES (2)"); });
  EXPECT_EQ(conn->exec("SELECT count(*) FROM t").integer(0, 0), 1);
}

TEST(PgPool, WaitsForAFreeConnectionThenGivesUp) {
  PgPool pool(options(testing::shared_postgres().create_database(), 1));
  auto held = pool.acquire();
  const auto start = std::chrono::steady_clock::now();
  try {
    pool.acquire();
    FAIL() << "no error";
  } catch (const DbError& e) {
    EXPECT_EQ(e.code(), "BACKEND_UNAVAILABLE");
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(450));
}

// The database going away is BACKEND_UNAVAILABLE at once, and the pool
// recovers by itself when it is back.
TEST(PgPool, FailsFastWhileTheServerIsDownAndRecovers) {
  PostgresCluster cluster;
  PgPool pool(options(cluster.url()));
  EXPECT_TRUE(pool.ping());
  { auto warm = pool.acquire(); }  // leave an idle connection in the pool

  cluster.stop();
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    try {
      auto conn = pool.acquire();
      conn->exec("SELECT 1");
      FAIL() << "query succeeded with the server down";
    } catch (const DbError& e) {
      EXPECT_EQ(e.code(), "BACKEND_UNAVAILABLE") << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));  // not a connect timeout's wait
  }
  EXPECT_FALSE(pool.ping());

  cluster.start();
  EXPECT_TRUE(pool.ping());
  auto conn = pool.acquire();
  EXPECT_EQ(conn->exec("SELECT 41 + 1").integer(0, 0), 42);
}

std::vector<Migration> sample_migrations() {
  return {{"0001_widgets.sql", "CREATE TABLE widgets (id int PRIMARY KEY);\nINSERT INTO widgets VALUES (1);"},
          {"0002_gadgets.sql", "CREATE TABLE gadgets (id int PRIMARY KEY);"}};
}

TEST(Migrations, ApplyInOrderOnceAndRecordEach) {
  PgPool pool(options(testing::shared_postgres().create_database()));
  auto conn = pool.acquire();
  EXPECT_EQ(apply_migrations(*conn, "widgets", sample_migrations()),
            (std::vector<std::string>{"0001_widgets.sql", "0002_gadgets.sql"}));
  EXPECT_TRUE(apply_migrations(*conn, "widgets", sample_migrations()).empty());
  auto more = sample_migrations();
  more.push_back({"0003_more.sql", "ALTER TABLE gadgets ADD COLUMN name text;"});
  EXPECT_EQ(apply_migrations(*conn, "widgets", more), (std::vector<std::string>{"0003_more.sql"}));
  EXPECT_EQ(conn->exec("SELECT count(*) FROM schema_migrations WHERE service = 'widgets'").integer(0, 0), 3);
  // Another service's migrations are tracked separately.
  EXPECT_EQ(apply_migrations(*conn, "other", {{"0001_widgets.sql", "SELECT 1;"}}).size(), 1u);
}

TEST(Migrations, AFailingMigrationLeavesNothingHalfApplied) {
  PgPool pool(options(testing::shared_postgres().create_database()));
  auto conn = pool.acquire();
  std::vector<Migration> bad{{"0001_ok.sql", "CREATE TABLE ok (id int);"},
                             {"0002_bad.sql", "CREATE TABLE half (id int);\nSELECT no_such_function();"}};
  EXPECT_THROW(apply_migrations(*conn, "bad", bad), DbError);
  EXPECT_EQ(conn->exec("SELECT to_regclass('half') IS NULL").boolean(0, 0), true);
  EXPECT_EQ(conn->exec("SELECT count(*) FROM schema_migrations WHERE service = 'bad'").integer(0, 0), 1);
  // The lock was released: the fixed migration applies.
  bad[1].sql = "CREATE TABLE half (id int);";
  EXPECT_EQ(apply_migrations(*conn, "bad", bad).size(), 1u);
}

TEST(Migrations, RefuseAnEditedAppliedMigration) {
  PgPool pool(options(testing::shared_postgres().create_database()));
  auto conn = pool.acquire();
  apply_migrations(*conn, "widgets", sample_migrations());
  auto edited = sample_migrations();
  edited[0].sql += "\n-- edited";
  try {
    apply_migrations(*conn, "widgets", edited);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("0001_widgets.sql was changed"), std::string::npos);
  }
}

TEST(Migrations, ReplicasStartingTogetherApplyEachOnce) {
  const std::string url = testing::shared_postgres().create_database();
  std::vector<std::thread> replicas;
  std::atomic<int> applied{0}, failed{0};
  for (int i = 0; i < 8; ++i) {
    replicas.emplace_back([&] {
      try {
        PgConnection conn(url, 5, 30000, "replica");
        applied += static_cast<int>(apply_migrations(conn, "widgets", sample_migrations()).size());
      } catch (const std::exception&) {
        ++failed;
      }
    });
  }
  for (auto& t : replicas) t.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(applied, 2);
  PgConnection conn(url, 5, 30000, "check");
  EXPECT_EQ(conn.exec("SELECT count(*) FROM widgets").integer(0, 0), 1);
}

}  // namespace
}  // namespace examiso
