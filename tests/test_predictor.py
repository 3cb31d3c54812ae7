"""Predictor: crop rule, image files, a trained checkpoint as users run it."""

import json
import pathlib

import chex
import cv2
import jax
import numpy as np
import pytest

import cascade_jax
from cascade_jax import drawing
from cascade_jax import geometry
from cascade_jax import heatmaps
from cascade_jax import predictor as predictor_lib
from cascade_jax.data import datasets
from cascade_jax.data import pipeline
from cascade_jax.eval import evaluate
from cascade_jax.model import build
from cascade_jax.train import checkpoint
from cascade_jax.train import state as state_lib
from configs import synthetic
from tests.data import fixtures

SPECIMEN_IMAGES = sorted(fixtures.SPECIMENS.glob('*/images/*.jpg'))


def test_default_crop_fills_the_image():
  center, scale = predictor_lib.default_crop((480, 720, 3))
  np.testing.assert_allclose(center, [359.5, 239.5])
  assert scale == 480.0


def test_default_crop_with_bbox_and_torso():
  center, scale = predictor_lib.default_crop((480, 720),
                                             bbox=(100, 50, 200, 250))
  np.testing.assert_allclose(center, [150.0, 150.0])
  assert scale == 200.0
  center, scale = predictor_lib.default_crop((480, 720), torso=(30, 40),
                                             bbox=(100, 50, 200, 250))
  np.testing.assert_allclose(center, [30.0, 40.0])
  assert scale == 200.0
  with pytest.raises(ValueError, match=r'x2 > x1'):
    predictor_lib.default_crop((480, 720), bbox=(200, 50, 100, 250))


def test_as_rgb_accepts_grey_and_rgba_and_rejects_floats():
  grey = np.arange(6, dtype=np.uint8).reshape(2, 3)
  np.testing.assert_array_equal(predictor_lib.as_rgb(grey)[..., 2], grey)
  rgba = np.zeros((2, 3, 4), np.uint8)
  assert predictor_lib.as_rgb(rgba).shape == (2, 3, 3)
  with pytest.raises(ValueError, match='uint8'):
    predictor_lib.as_rgb(np.zeros((2, 3, 3), np.float32))


def test_resolve_images_from_file_folder_and_glob(tmp_path):
  for name in ('b.png', 'a.jpg', 'notes.txt'):
    (tmp_path / name).write_bytes(b'x')
  assert predictor_lib.resolve_images(str(tmp_path)) == [
      str(tmp_path / 'a.jpg'), str(tmp_path / 'b.png')]
  assert predictor_lib.resolve_images(str(tmp_path / '*.png')) == [
      str(tmp_path / 'b.png')]
  assert predictor_lib.resolve_images(str(tmp_path / 'a.jpg')) == [
      str(tmp_path / 'a.jpg')]
  with pytest.raises(FileNotFoundError, match='no file matches'):
    predictor_lib.resolve_images(str(tmp_path / '*.bmp'))
  with pytest.raises(FileNotFoundError, match='missing.jpg'):
    predictor_lib.resolve_images(str(tmp_path / 'missing.jpg'))


def test_read_image_names_the_file_it_cannot_decode(tmp_path):
  path = tmp_path / 'broken.jpg'
  path.write_bytes(b'\xff\xd8 not really a jpeg')
  with pytest.raises(ValueError, match='broken.jpg'):
    predictor_lib.read_image(str(path))
  (tmp_path / 'empty.png').write_bytes(b'')
  with pytest.raises(ValueError, match=r'empty\.png.*empty'):
    predictor_lib.read_image(str(tmp_path / 'empty.png'))
  with pytest.raises(ValueError, match='missing.png'):
    predictor_lib.read_image(str(tmp_path / 'missing.png'))
  image = np.zeros((5, 7, 3), np.uint8)
  image[..., 0] = 255  # red in RGB
  cv2.imwrite(str(tmp_path / 'red.png'), image[..., ::-1])
  np.testing.assert_array_equal(predictor_lib.read_image(
      str(tmp_path / 'red.png')), image)


@pytest.fixture(scope='module')
def trained(tiny_cascade):
  """(Predictor, config, test source) of the session's tiny trained cascade."""
  workdir, config = tiny_cascade
  source, _ = datasets.load_split(config.data, 'test')
  predictor = cascade_jax.Predictor.from_checkpoint(workdir, batch_size=4)
  return predictor, config, source


@pytest.mark.slow
def test_predictor_matches_the_evaluation_on_the_evaluation_crop(
    trained, tiny_cascade):
  predictor, config, source = trained
  assert predictor.step == 4
  workdir, _ = tiny_cascade
  model = build.build_model(config.model, predictor.joint_set.num_joints)
  state = checkpoint.restore_latest_state(workdir, config, model)
  spec = pipeline.crop_spec(config, predictor.joint_set)
  expected = evaluate.predict_split(state, source, spec, 4, is_cascade=True,
                                    fusion=evaluate.fusion_options(config.eval))
  records = [source[i] for i in range(len(source))]
  got = predictor.predict_crops([r['image'] for r in records],
                                [r['torso_center'] for r in records],
                                [r['person_scale'] for r in records])
  chex.assert_trees_all_close(np.stack([p.joints for p in got]),
                              expected['cascade'], atol=1e-3)
  chex.assert_trees_all_close(np.stack([p.coarse_joints for p in got]),
                              expected['coarse'], atol=1e-3)
  chex.assert_trees_all_close(np.stack([p.scores for p in got]),
                              expected['scores'], atol=1e-5)
  # The flip test too: one forward pass (inference.predict) for both.
  expected = evaluate.predict_split(
      state, source, spec, 4, is_cascade=True,
      fusion=evaluate.fusion_options(config.eval), flip=True)
  got = predictor.predict_crops([r['image'] for r in records],
                                [r['torso_center'] for r in records],
                                [r['person_scale'] for r in records],
                                flip=True)
  chex.assert_trees_all_close(np.stack([p.joints for p in got]),
                              expected['cascade'], atol=1e-3)
  chex.assert_trees_all_close(np.stack([p.scores for p in got]),
                              expected['scores'], atol=1e-5)


@pytest.mark.slow
def test_predict_returns_joints_inside_the_image(trained):
  predictor, _, source = trained
  image = source[0]['image']
  joints, scores = predictor.predict(image)
  chex.assert_shape(joints, (11, 2))
  chex.assert_shape(scores, (11,))
  assert np.all(np.isfinite(scores))
  height, width = image.shape[:2]
  assert np.all((joints >= -0.5) & (joints <= [width - 0.5, height - 0.5]))


@pytest.mark.slow
def test_multi_scale_takes_each_joint_from_its_highest_peak(trained):
  predictor, _, source = trained
  image = source[1]['image']
  scales = (0.8, 1.0, 1.25)
  searched = predictor.predict_images([image], scales=scales)[0]
  singles = [predictor.predict_images([image], scales=(s,))[0] for s in scales]
  all_scores = np.stack([p.scores for p in singles])  # [S, J]
  np.testing.assert_array_equal(searched.scale_index,
                                np.argmax(all_scores, axis=0))
  np.testing.assert_allclose(searched.scores, all_scores.max(axis=0),
                             atol=1e-6)
  for j, s in enumerate(searched.scale_index):
    np.testing.assert_allclose(searched.joints[j], singles[s].joints[j],
                               atol=1e-3)
  chex.assert_shape(searched.heatmaps, (3, 8, 8, 11))


def _skeleton_pixels(image):
  colours = [drawing.LEFT_COLOUR, drawing.RIGHT_COLOUR, drawing.CENTRE_COLOUR]
  return sum(int(np.all(image == c, axis=-1).sum()) for c in colours)


@pytest.mark.slow
def test_predict_files_writes_json_and_skeleton_overlays(trained, tmp_path):
  predictor, _, source = trained
  images = tmp_path / 'images'
  images.mkdir()
  for i in range(3):  # more images than the batch of 2 below
    cv2.imwrite(str(images / f'person{i}.png'), source[i]['image'][..., ::-1])
  (images / 'truncated.jpg').write_bytes(b'\xff\xd8\xff')
  out = tmp_path / 'out'
  paths = predictor_lib.resolve_images(str(images))
  with pytest.raises(predictor_lib.UnreadableImagesError,
                     match=r'(?s)1 of 4 images.*truncated\.jpg'):
    predictor_lib.predict_files(predictor, paths, str(out), batch_size=2,
                                scales=(0.9, 1.1))
  for i in range(3):  # the readable images were all written
    result = json.loads((out / f'person{i}.json').read_text())
    assert result['width'] == 64 and result['height'] == 64
    assert list(result['joints']) == list(predictor.joint_set.joints)
    assert result['crop']['scales'] == [0.9, 1.1]
    joints, _ = predictor.predict(source[i]['image'], scales=(0.9, 1.1))
    np.testing.assert_allclose(result['joints']['nose']['x'], joints[-1, 0],
                               atol=1e-4)
    overlay = cv2.imread(str(out / f'person{i}_overlay.png'))[..., ::-1]
    assert overlay.shape == (64, 64, 3)
    assert _skeleton_pixels(overlay) > _skeleton_pixels(source[i]['image']) + 20
  assert not (out / 'truncated.json').exists()
  # --min_score above every score: every joint marked, none drawn.
  (images / 'truncated.jpg').unlink()
  predictor_lib.predict_files(predictor, paths[:1], str(out), min_score=1e9)
  result = json.loads((out / 'person0.json').read_text())
  assert result['min_score'] == 1e9 and 'heat-map' in result['score']
  assert not any(joint['shown'] for joint in result['joints'].values())
  overlay = cv2.imread(str(out / 'person0_overlay.png'))[..., ::-1]
  np.testing.assert_array_equal(overlay, source[0]['image'])


def test_warnings_name_synthetic_training_and_low_scores():
  config = synthetic.get_config()
  assert 'synthetic figures' in predictor_lib.checkpoint_warning(config)
  config.data.name = 'flic'
  assert predictor_lib.checkpoint_warning(config) is None

  def results(*scores):
    return [{'joints': {f'j{i}': {'score': s} for i, s in enumerate(scores)}}]

  low = predictor_lib.LOW_SCORE
  warning = predictor_lib.score_warning(results(low / 2, low / 3, 1.0), False)
  assert warning.startswith(f'2 of 3 joint scores are below {low:g}')
  assert '--bbox' in warning and '--torso' in warning
  assert '--bbox=' not in predictor_lib.score_warning(
      results(low / 2, low / 3, 1.0), True)
  assert predictor_lib.score_warning(results(low / 2, low, 1.0), False) is None


@pytest.mark.slow
@pytest.mark.skipif(not SPECIMEN_IMAGES, reason='no ../shared/specimens')
def test_predict_on_real_specimen_images(trained, tmp_path):
  predictor, config, _ = trained
  paths = [str(p) for p in SPECIMEN_IMAGES]
  written = predictor_lib.predict_files(predictor, paths, str(tmp_path),
                                        scales=(0.7, 1.0))
  assert len(written) == len(paths)
  for path, json_path in zip(paths, written):
    result = json.loads(pathlib.Path(json_path).read_text())
    image = cv2.imread(path)
    assert (result['height'], result['width']) == image.shape[:2]
    # Joints lie in the largest crop box, the image-filling default crop
    # (box_scale * image height wide, centred on the image), widened by the
    # half fine window that a cascade's location may reach beyond it.
    side = config.data.box_scale * image.shape[0]
    reach = side / 2 * (1 + config.model.context / config.data.input_size[0])
    centre = np.array([image.shape[1] - 1, image.shape[0] - 1]) / 2
    for joint in result['joints'].values():
      assert np.all(np.abs([joint['x'], joint['y']] - centre) <= reach)
    overlay = cv2.imread(json_path.replace('.json', '_overlay.png'))[..., ::-1]
    assert _skeleton_pixels(overlay) > _skeleton_pixels(image[..., ::-1])


def test_from_checkpoint_names_a_workdir_without_checkpoints(tmp_path):
  with pytest.raises(FileNotFoundError, match='no checkpoints/ folder'):
    cascade_jax.Predictor.from_checkpoint(str(tmp_path))
  assert not (tmp_path / 'checkpoints').exists()


def test_a_coarse_model_maps_its_heatmap_argmax_back_to_the_image():
  config = synthetic.get_config()
  config.model.name = 'coarse'
  config.data.input_size = (32, 48)  # (W, H): a non-square input
  config.model.bank_widths = (2, 2, 2, 4)
  config.model.head_widths = (4, 4)
  model = build.build_model(config.model, 11)
  state = state_lib.create_train_state(model, (1, 48, 32, 3),
                                       jax.random.PRNGKey(0))
  predictor = cascade_jax.Predictor(config, state.params, step=0, batch_size=3)
  image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), np.uint8)
  prediction = predictor.predict_images([image, image[:30]],
                                        scales=(0.5, 1.0))[0]
  chex.assert_shape(prediction.heatmaps, (2, 6, 4, 11))
  np.testing.assert_array_equal(prediction.joints, prediction.coarse_joints)
  cells, peaks = heatmaps.decode(prediction.heatmaps, stride=8)  # [2, J, 2]
  for j, s in enumerate(prediction.scale_index):
    expected = geometry.transform_points(prediction.crop_to_image[s],
                                         cells[s, j])
    np.testing.assert_allclose(prediction.joints[j], expected, atol=1e-4)
    assert prediction.scores[j] == peaks[:, j].max()
