// Tests for OpTable (op_table.h): slot allocation and reuse, the generation
// in user_data that keeps a stale completion away from a reused slot, the
// live count, and stable slot addresses (the kernel holds pointers into them).
#include "reactor/op_table.h"

#include <cstdint>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace pollux::reactor {
namespace {

TEST(OpTable, AllocateGivesAnInFlightSlotWithEmptyStorage) {
  OpTable t;
  EXPECT_EQ(t.live(), 0u);
  uint32_t i = t.allocate();
  EXPECT_EQ(t.live(), 1u);
  OpSlot& s = t.at(i);
  EXPECT_EQ(s.state, SlotState::kInFlight);
  EXPECT_FALSE(s.returns_fd);
  EXPECT_FALSE(s.multishot);
  EXPECT_TRUE(s.storage.buf.empty());
  EXPECT_TRUE(s.waker.empty());
  t.release(i);
  EXPECT_EQ(t.live(), 0u);
}

TEST(OpTable, LookupFindsTheLiveSlotByUserData) {
  OpTable t;
  uint32_t a = t.allocate();
  uint32_t b = t.allocate();
  ASSERT_NE(a, b);
  uint32_t found = OpTable::kNone;
  EXPECT_EQ(t.lookup(OpTable::user_data(b, t.at(b).generation), &found), &t.at(b));
  EXPECT_EQ(found, b);
  EXPECT_EQ(t.lookup(OpTable::user_data(a, t.at(a).generation), &found), &t.at(a));
  EXPECT_EQ(found, a);
  t.release(a);
  t.release(b);
}

TEST(OpTable, AStaleCompletionNeverReachesAReusedSlot) {
  OpTable t;
  uint32_t i = t.allocate();
  const uint64_t old_ud = OpTable::user_data(i, t.at(i).generation);
  t.release(i);
  uint32_t found = OpTable::kNone;
  EXPECT_EQ(t.lookup(old_ud, &found), nullptr) << "freed slot";
  uint32_t j = t.allocate();
  ASSERT_EQ(j, i) << "the free list reuses the slot";
  EXPECT_NE(OpTable::user_data(j, t.at(j).generation), old_ud);
  EXPECT_EQ(t.lookup(old_ud, &found), nullptr) << "reused slot, old generation";
  EXPECT_NE(t.lookup(OpTable::user_data(j, t.at(j).generation), &found), nullptr);
  t.release(j);
}

TEST(OpTable, GenerationsNeverRepeatOverManyReuses) {
  OpTable t;
  std::set<uint64_t> seen;
  for (int k = 0; k < 10'000; ++k) {
    uint32_t i = t.allocate();
    EXPECT_TRUE(seen.insert(OpTable::user_data(i, t.at(i).generation)).second);
    t.release(i);
  }
  EXPECT_EQ(t.capacity(), 1u);
}

TEST(OpTable, LookupOfAnUnknownIndexOrAFreeSlotIsNull) {
  OpTable t;
  uint32_t found = OpTable::kNone;
  EXPECT_EQ(t.lookup(OpTable::user_data(5, 1), &found), nullptr);
  uint32_t i = t.allocate();
  t.release(i);
  // The current generation of a free slot is still not a live operation.
  EXPECT_EQ(t.lookup(OpTable::user_data(i, t.at(i).generation), &found), nullptr);
}

TEST(OpTable, ReleaseClearsWhatTheSlotHeld) {
  OpTable t;
  uint32_t i = t.allocate();
  t.at(i).storage.buf.assign(4096, 'x');
  t.at(i).storage.path = "/tmp/some/path";
  t.at(i).more.push_back({1, 2});
  t.at(i).returns_fd = true;
  t.release(i);
  uint32_t j = t.allocate();
  ASSERT_EQ(j, i);
  EXPECT_TRUE(t.at(j).storage.buf.empty());
  EXPECT_TRUE(t.at(j).storage.path.empty());
  EXPECT_TRUE(t.at(j).more.empty());
  EXPECT_FALSE(t.at(j).returns_fd);
  t.release(j);
}

TEST(OpTable, SlotAddressesStayPutWhileTheTableGrows) {
  OpTable t;
  std::vector<uint32_t> ids;
  std::vector<const OpSlot*> addrs;
  for (int k = 0; k < 5'000; ++k) {
    ids.push_back(t.allocate());
    addrs.push_back(&t.at(ids.back()));
  }
  EXPECT_EQ(t.live(), 5'000u);
  for (size_t k = 0; k < ids.size(); ++k) EXPECT_EQ(&t.at(ids[k]), addrs[k]);
  for (uint32_t i : ids) t.release(i);
  EXPECT_EQ(t.live(), 0u);
}

}  // namespace
}  // namespace pollux::reactor
