"""The synthetic people's front/back cues, measured where a network reads them: in 96x64 crops (the cpu profile's
input size) of a person about 120 px tall in a 256x256 scene, the scenes' median.

The measurement is :mod:`posebook.data.cues` (the one chapter 01 shows): the same posed, left-right symmetric figure
drawn facing the camera (yaw 0) and turned away (yaw 180), compared pixel by pixel over the head (a face versus the
hair on the back of the head), the chest (the shirt front versus its plain back) and the feet (toes pointing at the
camera versus heels); and in profile (yaw +-90), the colour ahead of the head's centre and of each ankle (face,
toes) against the colour behind (hair, heels).

Thresholds. A pixel counts as differing where the mean over R, G and B of |front - back| is at least ``cues.STEP`` =
20 of 255 levels (8% of the range): far above the 1-2 levels of anti-aliasing, and still 12 levels after the training
colour jitter's strongest darkening (x0.6). A cue must cover at least 2 such pixels, the smallest step a 3x3
first-layer filter resolves; the counts below ask for more where the region is larger. Every bound must hold for each
of the ``PEOPLE`` colour samples (skin, hair, shirt, shoes, build): the worst case, not the average. They were set
under the worst of 200 samples when written (head 18 px and a mean of 13 levels, chest 55 px / 31, feet 14 px / 74;
side views: head 17 levels, feet 60 levels and 2 px) and above the renderer before these cues (head 8 px / 10 for
brown hair on dark skin, chest 0.7 levels, feet 0.9, side-view head 7): each test fails on that renderer.
"""
from __future__ import annotations

import pytest

import posebook.data.synthetic as synthetic
from posebook.data import cues

PEOPLE = 12             # colour samples per test


@pytest.fixture(scope="module")
def front_back():
    return cues.front_back_contrast(PEOPLE)


def test_the_head_shows_a_face_from_the_front_and_hair_from_behind(front_back):
    mean, count = front_back["head"]["mean"], front_back["head"]["pixels"]
    assert mean.min() >= 12 and count.min() >= 16, (mean.round(1), count)


def test_the_shirt_front_differs_from_its_back(front_back):
    mean, count = front_back["chest"]["mean"], front_back["chest"]["pixels"]
    assert mean.min() >= 25 and count.min() >= 40, (mean.round(1), count)


def test_the_feet_show_toes_from_the_front_and_heels_from_behind(front_back):
    mean, count = front_back["feet"]["mean"], front_back["feet"]["pixels"]
    assert mean.min() >= 40 and count.min() >= 8, (mean.round(1), count)


def test_hair_keeps_its_contrast_with_every_skin_tone():
    """Brown hair on dark skin would make the back of a head look like a face: such hair is darkened."""
    for skin in synthetic._SKIN.astype(float):
        for hair in synthetic._HAIR.astype(float):
            hair = synthetic._contrasting_hair(hair, skin)
            assert abs((hair - skin) @ synthetic._LUMA) >= synthetic.HAIR_SKIN_CONTRAST - 1e-9, (skin, hair)


def test_side_views_show_the_face_and_the_toes_on_the_side_the_figure_faces():
    side = cues.side_contrast(PEOPLE)
    head, feet = side["head"], side["feet"]
    assert head["mean"].min() >= 12 and head["pixels"].min() >= 10, (head["mean"].round(1), head["pixels"])
    assert feet["mean"].min() >= 30 and feet["pixels"].min() >= 2, (feet["mean"].round(1), feet["pixels"])
