// SPDX-License-Identifier: MIT
// tests/test_block.cpp - block metadata update rules (pcpu/internal/block.hpp), case by case.
#include <pcpu/internal/block.hpp>

#include <doctest/doctest.h>

#include <cstdint>

using pcpu::block_md;

namespace {

/// make_md(nr_bits, contig_start, contig, scan_start, scan, first_free) - a block
/// summary in a given state (left/right free zero: the runs below are interior).
block_md make_md(std::uint32_t nr_bits, std::uint32_t contig_start, std::uint32_t contig, std::uint32_t scan_start,
                 std::uint32_t scan, std::uint32_t first_free) {
    block_md md;
    md.nr_bits = nr_bits;
    md.contig_hint_start = contig_start;
    md.contig_hint = contig;
    md.scan_hint_start = scan_start;
    md.scan_hint = scan;
    md.first_free = first_free;
    md.left_free = 0;
    md.right_free = 0;
    md.max_before = md.max_after = contig; // nothing known about the other runs
    return md;
}

} // namespace

TEST_SUITE("block") {

TEST_CASE("init describes an entirely free block; set_full an entirely allocated one") {
    block_md md;
    pcpu::block_init(md, 1024);
    CHECK(md.nr_bits == 1024);
    CHECK(md.contig_hint == 1024);
    CHECK(md.contig_hint_start == 0);
    CHECK(md.left_free == 1024);
    CHECK(md.right_free == 1024);
    CHECK(md.first_free == 0);
    CHECK(md.scan_hint == 0);
    CHECK(pcpu::block_is_free(md));

    pcpu::block_set_full(md);
    CHECK(md.contig_hint == 0);
    CHECK(md.left_free == 0);
    CHECK(md.right_free == 0);
    CHECK(md.scan_hint == 0);
    CHECK(md.first_free == 1024);
    CHECK_FALSE(pcpu::block_is_free(md));
}

TEST_CASE("align_up and better_aligned") {
    CHECK(pcpu::align_up(0, 8) == 0);
    CHECK(pcpu::align_up(1, 8) == 8);
    CHECK(pcpu::align_up(8, 8) == 8);
    CHECK(pcpu::align_up(9, 1) == 9);
    CHECK(pcpu::align_up(1023, 1024) == 1024);

    CHECK(pcpu::better_aligned(0, 8));       // 0 is the best start
    CHECK_FALSE(pcpu::better_aligned(8, 0));
    CHECK_FALSE(pcpu::better_aligned(0, 0));
    CHECK(pcpu::better_aligned(16, 8));
    CHECK(pcpu::better_aligned(4, 3));
    CHECK_FALSE(pcpu::better_aligned(24, 8)); // same lowest set bit
    CHECK_FALSE(pcpu::better_aligned(3, 5));
    CHECK_FALSE(pcpu::better_aligned(2, 4));
}

TEST_CASE("merge: edges and first_free") {
    block_md md = make_md(64, 20, 10, 0, 0, 10);
    pcpu::block_update(md, 0, 5);
    CHECK(md.left_free == 5);
    CHECK(md.first_free == 0);
    pcpu::block_update(md, 61, 64);
    CHECK(md.right_free == 3);
    CHECK(md.first_free == 0);
    CHECK(md.contig_hint == 10); // both shorter than the contig hint
    CHECK(md.contig_hint_start == 20);
}

TEST_CASE("merge: a larger run after the contig hint") {
    SUBCASE("old contig beats the scan hint: it becomes the scan hint") {
        block_md md = make_md(128, 5, 10, 0, 0, 0);
        pcpu::block_update(md, 30, 50);
        CHECK(md.contig_hint == 20);
        CHECK(md.contig_hint_start == 30);
        CHECK(md.scan_hint == 10);
        CHECK(md.scan_hint_start == 5);
    }
    SUBCASE("scan hint as long as the old contig, before the new run: kept") {
        block_md md = make_md(128, 40, 10, 5, 10, 0);
        pcpu::block_update(md, 60, 80);
        CHECK(md.contig_hint == 20);
        CHECK(md.contig_hint_start == 60);
        CHECK(md.scan_hint == 10);
        CHECK(md.scan_hint_start == 5);
    }
    SUBCASE("scan hint as long as the old contig, after the new run: dropped") {
        // contig 10@5, scan 10@90 (the equal-size-after-contig case); a 20-bit run at
        // 40 would leave a shorter scan hint after the contig hint.
        block_md md = make_md(128, 5, 10, 90, 10, 0);
        pcpu::block_update(md, 40, 60);
        CHECK(md.contig_hint == 20);
        CHECK(md.contig_hint_start == 40);
        CHECK(md.scan_hint == 0);
    }
    SUBCASE("run swallowing an equal scan hint after the contig hint: dropped") {
        block_md md = make_md(128, 5, 10, 90, 10, 0);
        pcpu::block_update(md, 90, 110); // free next to the scan run
        CHECK(md.contig_hint == 20);
        CHECK(md.contig_hint_start == 90);
        CHECK(md.scan_hint == 0);
    }
}

TEST_CASE("merge: a larger run at or before the contig hint keeps a scan hint wholly before it") {
    // Unlike the kernel, which drops it: the scan run [10, 15) ends before the new
    // run, so it is still a maximal run with nothing longer before it.
    block_md md = make_md(128, 40, 10, 10, 5, 0);
    pcpu::block_update(md, 20, 35);
    CHECK(md.contig_hint == 15);
    CHECK(md.contig_hint_start == 20);
    CHECK(md.scan_hint == 5);
    CHECK(md.scan_hint_start == 10);

    // A free next to the contig run swallows it; the scan run is untouched.
    md = make_md(128, 40, 10, 10, 5, 0);
    pcpu::block_update(md, 38, 50);
    CHECK(md.contig_hint == 12);
    CHECK(md.contig_hint_start == 38);
    CHECK(md.scan_hint == 5);
    CHECK(md.scan_hint_start == 10);
}

TEST_CASE("merge: a larger run at or before the contig hint drops a scan hint it covers or precedes") {
    // The run swallowed the scan run (a free next to it).
    block_md md = make_md(128, 40, 10, 10, 5, 0);
    pcpu::block_update(md, 10, 30);
    CHECK(md.contig_hint == 20);
    CHECK(md.contig_hint_start == 10);
    CHECK(md.scan_hint == 0);

    // An equal scan run after the contig hint, then a longer run before both.
    md = make_md(128, 40, 10, 60, 10, 0);
    pcpu::block_update(md, 20, 35);
    CHECK(md.contig_hint == 15);
    CHECK(md.contig_hint_start == 20);
    CHECK(md.scan_hint == 0);
}

TEST_CASE("merge: equal size, alignment tie-break") {
    SUBCASE("better aligned run moves the contig hint") {
        block_md md = make_md(128, 41, 8, 2, 4, 0);
        pcpu::block_update(md, 16, 24);
        CHECK(md.contig_hint == 8);
        CHECK(md.contig_hint_start == 16);
        CHECK(md.scan_hint == 4); // still before the contig hint
        CHECK(md.scan_hint_start == 2);
    }
    SUBCASE("better aligned run before a shorter scan hint: the old contig run replaces it") {
        block_md md = make_md(128, 41, 8, 30, 4, 0);
        pcpu::block_update(md, 16, 24);
        CHECK(md.contig_hint_start == 16);
        CHECK(md.scan_hint == 8); // 4@30 would lie after the contig hint
        CHECK(md.scan_hint_start == 41);
    }
    SUBCASE("better aligned run, no scan hint: the old contig run becomes the (equal) scan hint") {
        block_md md = make_md(128, 41, 8, 0, 0, 0);
        pcpu::block_update(md, 16, 24);
        CHECK(md.contig_hint_start == 16);
        CHECK(md.scan_hint == 8);
        CHECK(md.scan_hint_start == 41);
    }
    SUBCASE("start 0 is the best alignment") {
        block_md md = make_md(128, 64, 8, 0, 0, 0);
        pcpu::block_update(md, 0, 8);
        CHECK(md.contig_hint_start == 0);
        CHECK(md.left_free == 8);
    }
    SUBCASE("contig at 0 is never displaced") {
        block_md md = make_md(128, 0, 8, 0, 0, 0);
        pcpu::block_update(md, 64, 72);
        CHECK(md.contig_hint_start == 0);
        CHECK(md.scan_hint == 8); // equal size after the contig hint
        CHECK(md.scan_hint_start == 64);
    }
    SUBCASE("worse aligned run becomes the (equal) scan hint") {
        block_md md = make_md(128, 16, 8, 0, 0, 0);
        pcpu::block_update(md, 41, 49);
        CHECK(md.contig_hint_start == 16);
        CHECK(md.scan_hint == 8);
        CHECK(md.scan_hint_start == 41);
    }
    SUBCASE("equally aligned earlier run replaces a shorter scan hint") {
        block_md md = make_md(128, 72, 8, 60, 3, 0);
        pcpu::block_update(md, 40, 48); // ctz(40) == ctz(72)
        CHECK(md.contig_hint_start == 72);
        CHECK(md.scan_hint == 8);
        CHECK(md.scan_hint_start == 40);
    }
    SUBCASE("the contig run itself, seen again, changes nothing") {
        block_md md = make_md(128, 41, 8, 2, 4, 0);
        pcpu::block_update(md, 41, 49);
        CHECK(md.contig_hint_start == 41);
        CHECK(md.scan_hint == 4);
        CHECK(md.scan_hint_start == 2);
    }
}

TEST_CASE("merge: a smaller run before the contig hint vs the scan hint") {
    SUBCASE("no scan hint: only a run at first_free is known to have nothing longer before it") {
        block_md md = make_md(128, 100, 20, 0, 0, 0);
        pcpu::block_update(md, 50, 55); // runs in [0, 50) unknown
        CHECK(md.scan_hint == 0);
        md = make_md(128, 100, 20, 0, 0, 50);
        pcpu::block_update(md, 50, 55); // first_free: nothing free before it
        CHECK(md.scan_hint == 5);
        CHECK(md.scan_hint_start == 50);
    }
    SUBCASE("a longer run before the scan hint replaces it") {
        block_md md = make_md(128, 100, 20, 50, 5, 0);
        pcpu::block_update(md, 10, 17);
        CHECK(md.scan_hint == 7);
        CHECK(md.scan_hint_start == 10);
    }
    SUBCASE("a run swallowing the scan hint replaces it") {
        block_md md = make_md(128, 100, 20, 50, 5, 0);
        pcpu::block_update(md, 48, 60);
        CHECK(md.scan_hint == 12);
        CHECK(md.scan_hint_start == 48);
        CHECK(md.contig_hint == 20);
    }
    SUBCASE("a longer run between the scan and contig hints: unknown prefix, ignored") {
        block_md md = make_md(128, 100, 20, 50, 5, 0);
        pcpu::block_update(md, 60, 66);
        CHECK(md.scan_hint == 5);
        CHECK(md.scan_hint_start == 50);
    }
    SUBCASE("block_update_scan: the caller scanned the prefix, the scan hint moves forward") {
        block_md md = make_md(128, 100, 20, 50, 5, 0);
        pcpu::block_update_scan(md, 60, 66);
        CHECK(md.scan_hint == 6);
        CHECK(md.scan_hint_start == 60);
        pcpu::block_update_scan(md, 70, 76); // equal and later: moves further
        CHECK(md.scan_hint == 6);
        CHECK(md.scan_hint_start == 70);
        pcpu::block_update_scan(md, 80, 82); // shorter: ignored
        CHECK(md.scan_hint_start == 70);
    }
    SUBCASE("shorter than the scan hint, or after the contig hint: ignored") {
        block_md md = make_md(128, 40, 20, 10, 5, 0);
        pcpu::block_update(md, 2, 4);
        CHECK(md.scan_hint == 5);
        CHECK(md.scan_hint_start == 10);
        pcpu::block_update_scan(md, 70, 80); // after the contig hint
        CHECK(md.scan_hint == 5);
        CHECK(md.scan_hint_start == 10);
        CHECK(md.contig_hint_start == 40);
    }
}

TEST_CASE("fit check with alignment (pcpu_check_block_hint)") {
    block_md md = make_md(1024, 3, 10, 0, 0, 0);
    CHECK(pcpu::block_check_hint(md, 8, 1));
    CHECK(pcpu::block_check_hint(md, 10, 1));
    CHECK_FALSE(pcpu::block_check_hint(md, 11, 1));
    CHECK(pcpu::block_check_hint(md, 8, 4));  // starts at 4: 4..12 <= 13
    CHECK(pcpu::block_check_hint(md, 9, 4));  // 4..13
    CHECK_FALSE(pcpu::block_check_hint(md, 10, 4));
    CHECK_FALSE(pcpu::block_check_hint(md, 8, 8)); // starts at 8: 8..16 > 13
    CHECK(pcpu::block_check_hint(md, 5, 8));
    CHECK_FALSE(pcpu::block_check_hint(md, 1, 16)); // 16 is past the run's end

    block_md full;
    pcpu::block_init(full, 1024);
    CHECK(pcpu::block_check_hint(full, 1024, 1024));
    CHECK_FALSE(pcpu::block_check_hint(full, 1025, 1));
    pcpu::block_set_full(full);
    CHECK_FALSE(pcpu::block_check_hint(full, 1, 1));

    // Chunk-level positions are large; the check must not overflow.
    block_md chunk_md = make_md(0x40000000u, 0x3ffffff1u, 15, 0, 0, 0);
    CHECK(pcpu::block_check_hint(chunk_md, 15, 1));
    CHECK_FALSE(pcpu::block_check_hint(chunk_md, 1, 1024));
}

TEST_CASE("next hint (pcpu_next_hint)") {
    block_md md = make_md(1024, 50, 20, 10, 5, 3);
    CHECK(pcpu::block_next_hint(md, 6) == 15);  // longer than the scan hint: skip it
    CHECK(pcpu::block_next_hint(md, 5) == 3);   // could fit in the scan hint run
    CHECK(pcpu::block_next_hint(md, 1) == 3);

    md = make_md(1024, 10, 20, 50, 20, 3); // equal scan hint after the contig hint
    CHECK(pcpu::block_next_hint(md, 21) == 3);
    CHECK(pcpu::block_next_hint(md, 20) == 3);

    md = make_md(1024, 50, 20, 0, 0, 7); // no scan hint
    CHECK(pcpu::block_next_hint(md, 19) == 7);
}

} // TEST_SUITE("block")
