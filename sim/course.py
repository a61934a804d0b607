"""What the course measured on its real-data world: the truth Botify's world is checked against.

Sources (public repositories of the course):
- `hw/homework-recommenders.png` of anokhin/recsys-course-spring-2025: six seminar recommenders
  against Random on the course's simulator with its real-data world; per-user means with the
  session's first track (time 1.0) included, 95 % Welch intervals.
- `sim/data/users.json` of the same repository: 10,000 users, 3 interests each.
- The seed report (`shared/seed`): its day-1 dataset and its A/B effects against StickyArtist.

Calibration (`sim.calibrate`) tunes the generated world to the Random level, StickyArtist and
TopPop only. Every other figure here is validation: reported beside ours, never tuned to.
"""

from __future__ import annotations

from dataclasses import dataclass

TIME, TRACKS = "mean_time_per_session", "mean_tracks_per_session"


@dataclass(frozen=True)
class CourseEffect:
    """A recommender's effect against Random, in % of Random's mean, with its 95 % interval."""

    recommender: str  # Botify's name for it
    label: str  # the course's name
    metric: str
    percent: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


# Random's own level (the table's control means).
RANDOM_LEVEL = {TIME: 2.051358, TRACKS: 7.046864}


def _rows(recommender, label, time, tracks):
    return (
        CourseEffect(recommender, label, TIME, *time),
        CourseEffect(recommender, label, TRACKS, *tracks),
    )


# The table, row by row (percent, lower, upper), as printed in the course's picture.
VS_RANDOM: tuple[CourseEffect, ...] = (
    *_rows("sticky_artist", "StickyArtist", (45.603934, 41.683319, 49.524549),
           (13.418791, 12.251841, 14.585741)),
    *_rows("toppop", "TopPop[100]", (3.508089, -1.611979, 8.628157),
           (1.183910, -0.325568, 2.693388)),
    *_rows("user_based", "UserBased", (12.231010, 7.303458, 17.158562),
           (3.640852, 2.191765, 5.089939)),
    *_rows("lightfm", "LightFM", (-1.977136, -6.982744, 3.028472),
           (-0.610491, -2.072104, 0.851121)),
    *_rows("contextual", "contextual", (0.707350, -4.326700, 5.741401),
           (0.264902, -1.219670, 1.749474)),
    *_rows("gcf", "GCF", (17.684085, 12.733016, 22.635155),
           (5.230927, 3.779722, 6.682131)),
)  # fmt: skip


def course_effect(recommender: str, metric: str) -> CourseEffect:
    for row in VS_RANDOM:
        if row.recommender == recommender and row.metric == metric:
            return row
    raise KeyError(f"the course's table has no row for {recommender} / {metric}")


@dataclass(frozen=True)
class InterestSpread:
    users: int
    distinct_tracks: int  # distinct tracks that are somebody's interest
    max_users_per_track: int


# The course's users.json: 10,000 users x 3 interests.
COURSE_INTERESTS = InterestSpread(users=10_000, distinct_tracks=21_021, max_users_per_track=8)

# The seed's day-1 dataset: the collected log, and what the seed's filter (time > 0.8, then the
# users and tracks with >= 3 interactions) kept for CORE.
SEED_DATASET = {"rows": 2_923_898, "interactions": 600_616, "users": 10_000, "tracks": 36_062}

# The seed's A/B: mean time per session against C = StickyArtist, in %.
SEED_AB = {"T1": 40.6, "T2": 42.7, "T3": 4.0}
