"""`tv3dg render`: turntable video + views.png from the sample asset, and one-line errors."""

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from PIL import Image

from tv3dg.cli import main
from tv3dg.export.video import contact_sheet, write_turntable
from tv3dg.gaussians.ply import load_ply
from tv3dg.gaussians.synthetic import BLUE, GREEN, SAMPLE_ASSET, beach_ball


def test_sample_asset_is_what_its_generator_makes():
    packaged, generated = load_ply(SAMPLE_ASSET), beach_ball()
    for (name, a), (_, b) in zip(packaged.named_parameters(), generated.named_parameters()):
        # synthesised in float32 with trig and log, whose vectorised kernels may differ by an ulp or two
        # between CPUs (values up to ~4, so ~1e-6 absolute): rtol 1e-5 covers that, not a changed asset
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_render_gif_and_views_of_the_sample(tmp_path, capsys):
    out = tmp_path / "spin" / "turntable.gif"
    assert main(["render", str(SAMPLE_ASSET), "--out", str(out), "--frames", "8", "--resolution", "40",
                 "--elevation", "0", "--views", "4"]) == 0
    frames = imageio.mimread(out)
    assert len(frames) == 8 and frames[0].shape[:2] == (40, 40)
    # The camera convention: frame 0 looks at the front (+Z, the blue gore), frame 2 (90 degrees)
    # at the right side (+X, the green gore). The centre pixel shows that gore's colour.
    for index, colour in ((0, BLUE), (2, GREEN)):
        centre = np.asarray(frames[index])[20, 20, :3] / 255.0
        assert np.abs(centre - np.array(colour)).max() < 0.08, (index, centre)
    assert np.asarray(frames[0])[0, 0, :3].min() == 255  # white background in the corner
    views = np.asarray(Image.open(out.parent / "views.png"))
    assert views.shape == (40, 4 * 40 + 3 * 2, 3)  # one row of four views, 2-pixel gaps
    assert "turntable.gif" in capsys.readouterr().out


def test_render_mp4_with_options(tmp_path):
    out = tmp_path / "turntable.mp4"
    assert main(["render", str(SAMPLE_ASSET), "--out", str(out), "--frames", "5", "--resolution", "33",
                 "--background", "0,0,0", "--radius", "4", "--fov", "30", "--views", "2"]) == 0
    reader = imageio.get_reader(out)
    frames = [frame for frame in reader]
    reader.close()
    assert len(frames) == 5 and frames[0].shape == (34, 34, 3)  # padded to even size for yuv420p
    assert frames[0][1, 1].max() < 20  # black background
    assert (tmp_path / "views.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.ply", "--out", "t.mp4"], "does not exist"),
        (["{bad}", "--out", "t.mp4"], "not a readable .ply"),
        (["{sample}", "--out", "t.avi"], "must end in .mp4 or .gif"),
        (["{sample}", "--out", "t.gif", "--background", "pink"], "--background 'pink'"),
        (["{sample}", "--out", "t.gif", "--radius", "-2"], "--radius '-2'"),
        (["{sample}", "--out", "t.gif", "--radius", "nan"], "--radius 'nan'"),
        (["{sample}", "--out", "t.gif", "--radius", "inf"], "--radius 'inf'"),
        (["{sample}", "--out", "t.gif", "--frames", "0"], "--frames must be a positive"),
        (["{sample}", "--out", "t.gif", "--resolution", "0"], "--resolution must be a positive"),
        (["{sample}", "--out", "t.gif", "--views", "0"], "--views must be a positive"),
        (["{sample}", "--out", "t.gif", "--fps", "0"], "--fps must be a positive"),
        (["{sample}", "--out", "t.gif", "--fov", "0.5"], "--fov must be between 1 and 170"),
        (["{sample}", "--out", "t.gif", "--fov", "171"], "--fov must be between 1 and 170"),
        (["{sample}", "--out", "t.gif", "--fov", "nan"], "--fov must be between 1 and 170"),
    ],
    ids=["missing", "malformed", "extension", "background", "radius", "radius-nan", "radius-inf", "frames",
         "resolution", "views", "fps", "fov-small", "fov-large", "fov-nan"],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.ply").write_text("not a ply")
    args = [a.format(bad=tmp_path / "bad.ply", sample=SAMPLE_ASSET) for a in args]
    assert main(["render"] + args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not list(tmp_path.glob("t.*"))


def test_contact_sheet_grid_and_unknown_video_suffix(tmp_path):
    images = [np.full((3, 2, 3), i * 40, dtype=np.uint8) for i in range(5)]
    sheet = contact_sheet(images, columns=3, gap=1)
    assert sheet.shape == (3 * 2 + 1, 2 * 3 + 2, 3)
    assert sheet[4, 3, 0] == 4 * 40  # fifth image: second row, second column
    assert sheet[0, 2, 0] == 255  # gap
    from tv3dg.errors import UserError

    with pytest.raises(UserError, match=".mp4 or .gif"):
        write_turntable(tmp_path / "x.webm", images)
