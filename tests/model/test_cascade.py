"""Tests for cascade_jax.model.cascade and .standard_cascade."""

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from cascade_jax import heatmaps
from cascade_jax.model import cascade
from cascade_jax.model import crop
from cascade_jax.model import fine
from cascade_jax.model import losses
from cascade_jax.model import spatial
from cascade_jax.model import standard_cascade

# 8x pooling and a context of 24: windows are centred exactly on the coarse
# argmax (a cell centre 8j + 3.5), as for any even context and pooling.
NARROW = dict(num_joints=3, pooling=8, bank_widths=(2, 3, 4, 5),
              head_widths=(6, 7), fine_bank_widths=(4, 5),
              fine_hidden_width=6, context=24)
IMAGES = np.random.default_rng(0).uniform(size=(2, 64, 48, 3)).astype(
    np.float32)


@functools.cache
def _variables():
  model = cascade.CascadeModel(**NARROW)
  return jax.jit(functools.partial(model.init, train=False))(
      jax.random.key(0), jnp.asarray(IMAGES))


def _leaf_norms(tree):
  return {'/'.join(k.key for k in path): float(jnp.max(jnp.abs(leaf)))
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _raise_joint_1(model, constant):
  """Fine heat-maps of ``model`` before and after ``constant`` is added to
  joint 1's coarse heat-map (which moves no argmax, so no window), with the
  initial parameters and the gradient of the fine maps' sum with respect to
  the coarse part: (params, before, after, coarse gradients)."""
  images = jnp.asarray(IMAGES)
  params = jax.jit(functools.partial(model.init, train=False))(
      jax.random.key(0), images)['params']

  @jax.jit
  def fine_maps(params):
    return model.apply({'params': params}, images, train=False).fine_heatmaps

  raised = jax.tree.map(lambda x: x, params)
  bias = params['coarse']['heatmaps']['bias']
  raised['coarse']['heatmaps']['bias'] = bias.at[1].add(constant)
  grads = jax.jit(jax.grad(lambda p: jnp.sum(fine_maps(p))))(params)
  return params, fine_maps(params), fine_maps(raised), grads['coarse']


class CascadeModelTest(chex.TestCase):

  def test_heatmap_input_gives_each_joint_its_own_map_without_gradient(self):
    model = cascade.CascadeModel(**NARROW, fine_heatmap_input=True)
    params, before, after, coarse_grads = _raise_joint_1(model, 0.5)
    self.assertIn('hint_conv0', params['fine']['siamese'])
    # Only joint 1's own input changes.
    np.testing.assert_array_equal(before[..., [0, 2]], after[..., [0, 2]])
    self.assertGreater(float(jnp.max(jnp.abs(before[..., 1]
                                             - after[..., 1]))), 1e-4)
    # No gradient reaches the coarse heat-maps through the fine model.
    for name in ('heatmaps', 'head0', 'head1'):
      for leaf in jax.tree.leaves(coarse_grads[name]):
        np.testing.assert_array_equal(leaf, 0.0)

  def test_other_joints_maximum_is_the_maximum_over_the_other_channels(self):
    # Two cells, three joints; written out by hand, channel j = max over k != j.
    maps = np.array([[[[0.9, 0.2, 0.5], [-1.0, 0.3, -2.0]]]], np.float32)
    expected = np.array([[[[0.5, 0.9, 0.9], [0.3, -1.0, 0.3]]]], np.float32)
    np.testing.assert_array_equal(
        cascade.other_joints_maximum(jnp.asarray(maps)), expected)

  def test_other_joints_input_shows_each_joint_where_the_others_are(self):
    model = cascade.CascadeModel(**NARROW, fine_heatmap_input=True,
                                 fine_other_joints_input=True)
    params, before, after, coarse_grads = _raise_joint_1(model, 5.0)
    # Two input channels: the joint's own map and the others' maximum.
    chex.assert_shape(params['fine']['siamese']['hint_conv0']['kernel'],
                      (7, 7, 2, NARROW['fine_bank_widths'][0]))
    # Joints 0 and 2 see joint 1 among the others: their maps change too.
    for joint in range(3):
      self.assertGreater(float(jnp.max(jnp.abs(before[..., joint]
                                               - after[..., joint]))), 1e-4)
    # No gradient reaches the coarse heat-maps through either channel.
    for name in ('heatmaps', 'head0', 'head1'):
      for leaf in jax.tree.leaves(coarse_grads[name]):
        np.testing.assert_array_equal(leaf, 0.0)

  def test_other_joints_input_needs_the_heatmap_input(self):
    model = cascade.CascadeModel(**NARROW, fine_other_joints_input=True)
    with self.assertRaisesRegex(ValueError, 'set fine_heatmap_input'):
      model.init(jax.random.key(0), jnp.asarray(IMAGES), train=False)

  def test_hint_channels_count_the_heatmap_inputs(self):
    self.assertEqual(cascade.hint_channels(False, False), 0)
    self.assertEqual(cascade.hint_channels(True, False), 1)
    self.assertEqual(cascade.hint_channels(True, True), 2)
    with self.assertRaisesRegex(ValueError, 'set fine_heatmap_input'):
      cascade.hint_channels(False, True)

  def test_outputs_and_windows_centred_on_the_coarse_argmax(self):
    model = cascade.CascadeModel(**NARROW)
    outputs = jax.jit(functools.partial(model.apply, train=False))(
        _variables(), jnp.asarray(IMAGES))
    chex.assert_shape(outputs.coarse_heatmaps, (2, 8, 6, 3))
    chex.assert_shape(outputs.fine_heatmaps, (2, 24, 24, 3))
    coarse_locations, _ = heatmaps.decode(outputs.coarse_heatmaps, 8)
    np.testing.assert_array_equal(outputs.crop_centres, coarse_locations)
    np.testing.assert_array_equal(outputs.window_origins + 11.5,
                                  coarse_locations)
    joints, scores = cascade.locations(outputs, 8, subpixel=True)
    expected, peaks = fine.decode_locations(
        outputs.fine_heatmaps, outputs.window_origins, subpixel=True)
    np.testing.assert_array_equal(joints, expected)
    np.testing.assert_array_equal(scores, peaks)

  def test_given_crop_centres_are_used(self):
    model = cascade.CascadeModel(**NARROW)
    centres = jnp.asarray(np.array([[[0.0, 0.0], [47.0, 63.0], [20.0, 30.0]],
                                    [[10.0, 5.0], [30.0, 40.0], [-9.0, 99.0]]],
                                   np.float32))
    outputs = jax.jit(functools.partial(model.apply, train=False))(
        _variables(), jnp.asarray(IMAGES), crop_centres=centres)
    np.testing.assert_array_equal(outputs.crop_centres, centres)
    np.testing.assert_array_equal(
        outputs.window_origins,
        crop.window_origins(centres, (64, 48), NARROW['context']))

  def test_fine_loss_trains_the_cropped_convs_not_the_coarse_head(self):
    model = cascade.CascadeModel(**NARROW)
    params = _variables()['params']
    # Ground truth near the coarse predictions, so that it lies in the windows.
    joints = jax.jit(functools.partial(model.apply, train=False))(
        {'params': params}, jnp.asarray(IMAGES)).crop_centres + jnp.array(
            [2.0, -3.0])
    visible = jnp.ones((2, 3))

    def fine_loss(params):
      outputs = model.apply({'params': params}, jnp.asarray(IMAGES),
                            train=False)
      targets, weights = fine.fine_targets(
          joints, visible, outputs.window_origins, NARROW['context'])
      return losses.heatmap_loss(outputs.fine_heatmaps, targets,
                                 weights), weights

    grads, weights = jax.jit(jax.grad(fine_loss, has_aux=True))(params)
    chex.assert_trees_all_equal(weights, visible)
    norms = _leaf_norms(grads['coarse'])
    for name, norm in norms.items():
      # E2 reaches the coarse model only through the crops of conv1 / conv2
      # (the crop centres carry no gradient).
      if '/conv1/' in name or '/conv2/' in name:
        self.assertGreater(norm, 0.0, name)
      else:
        self.assertEqual(norm, 0.0, name)
    self.assertTrue(all(norm > 0 for norm in
                        _leaf_norms(grads['fine']).values()))


class FusionTest(chex.TestCase):
  """``cascade.locations``: how the fine answer replaces the coarse one."""

  def _outputs(self):
    # 8x pooling, 16-px windows at origin (0, 0): crop centre (7.5, 7.5).
    # Joint 0: a strong fine peak 1.0 at (3, 12); joint 1: a weak one, 0.2,
    # at (14, 1). The coarse map [1, 4, 4, 2] fires at cell (0, 0) (centre
    # (3.5, 3.5)) for joint 0 and at cell (1, 1) for joint 1.
    fine_maps = np.zeros((1, 16, 16, 2), np.float32)
    fine_maps[0, 12, 3, 0] = 1.0
    fine_maps[0, 4, 4, 0] = 0.9    # Weaker, but where the coarse map fires.
    fine_maps[0, 1, 14, 1] = 0.2
    coarse_maps = np.zeros((1, 4, 4, 2), np.float32)
    coarse_maps[0, 0, 0, 0] = 1.0
    coarse_maps[0, 1, 1, 1] = 1.0
    return cascade.CascadeOutputs(
        coarse_heatmaps=jnp.asarray(coarse_maps),
        fine_heatmaps=jnp.asarray(fine_maps),
        crop_centres=jnp.full((1, 2, 2), 7.5),
        window_origins=jnp.zeros((1, 2, 2), jnp.int32))

  def test_fine_is_the_fine_argmax_with_its_peak(self):
    joints, scores = cascade.locations(self._outputs(), 8)
    np.testing.assert_array_equal(joints, [[[3, 12], [14, 1]]])
    np.testing.assert_allclose(scores, [[1.0, 0.2]])

  def test_a_weak_fine_peak_keeps_the_coarse_location(self):
    joints, scores = cascade.locations(self._outputs(), 8, 'threshold',
                                       min_peak=0.5)
    np.testing.assert_array_equal(joints, [[[3, 12], [7.5, 7.5]]])
    np.testing.assert_allclose(scores, [[1.0, 0.2]])  # The fine peaks.
    # A threshold below both peaks changes nothing.
    joints, _ = cascade.locations(self._outputs(), 8, 'threshold',
                                  min_peak=0.1)
    np.testing.assert_array_equal(joints, [[[3, 12], [14, 1]]])

  def test_product_weighs_the_fine_map_by_the_upsampled_coarse_map(self):
    # Joint 0: the coarse map is 1 at cell (0, 0), i.e. around input pixel
    # (3.5, 3.5), and 0 from cell (1, .) on: (3, 12) gets weight 0, (4, 4)
    # a weight near 1. Joint 1: (14, 1) lies in row 0 of cells, where the
    # coarse map is 0: the product is 0 everywhere, the crop centre stays.
    joints, scores = cascade.locations(self._outputs(), 8, 'product')
    np.testing.assert_array_equal(joints, [[[4, 4], [7.5, 7.5]]])
    np.testing.assert_allclose(scores[0, 0], 0.9)

  def test_product_weighs_by_the_map_the_windows_were_cut_at(self):
    # An MRF moved joint 0's window: its prior fires at cell (0, 1) (centre
    # (3.5, 11.5)), not at the coarse cell (0, 0). Weighed by it, the strong
    # fine peak at (3, 12) wins over the coarse-supported (4, 4).
    prior = np.zeros((1, 4, 4, 2), np.float32)
    prior[0, 1, 0, 0] = 1.0
    prior[0, 1, 1, 1] = 1.0  # joint 1 as the coarse map
    joints, scores = cascade.locations(self._outputs(), 8, 'product',
                                       prior=jnp.asarray(prior))
    np.testing.assert_array_equal(joints, [[[3, 12], [7.5, 7.5]]])
    np.testing.assert_allclose(scores[0, 0], 1.0)

  def test_coarse_power_trusts_the_coarse_map_more(self):
    # One joint, 16-px window at (0, 0). The coarse map is 1 at cell (0, 0)
    # and 0.5 at cell (0, 1) (centre (3.5, 11.5)): bilinearly 0.908 at pixel
    # (4, 4) and 0.469 at (3, 12). Fine peaks 0.4 at (4, 4), 1.0 at (3, 12):
    # power 1 gives 0.363 vs 0.469 (the far, strong fine peak); power 4
    # gives 0.272 vs 0.048 (the peak the coarse map supports).
    fine_maps = np.zeros((1, 16, 16, 1), np.float32)
    fine_maps[0, 4, 4, 0], fine_maps[0, 12, 3, 0] = 0.4, 1.0
    coarse_maps = np.zeros((1, 4, 4, 1), np.float32)
    coarse_maps[0, 0, 0, 0], coarse_maps[0, 1, 0, 0] = 1.0, 0.5
    outputs = cascade.CascadeOutputs(
        coarse_heatmaps=jnp.asarray(coarse_maps),
        fine_heatmaps=jnp.asarray(fine_maps),
        crop_centres=jnp.full((1, 1, 2), 7.5),
        window_origins=jnp.zeros((1, 1, 2), jnp.int32))
    joints, scores = cascade.locations(outputs, 8, 'product')
    np.testing.assert_array_equal(joints, [[[3, 12]]])
    joints, scores = cascade.locations(outputs, 8, 'product', coarse_power=4)
    np.testing.assert_array_equal(joints, [[[4, 4]]])
    np.testing.assert_allclose(scores, [[0.4]])  # The fine map's value.

  def test_cell_keeps_the_argmax_within_the_coarse_cell_and_margin(self):
    # Cell of half-width 4 + margin 0 around (7.5, 7.5): x, y in [3.5, 11.5].
    joints, _ = cascade.locations(self._outputs(), 8, 'cell')
    np.testing.assert_array_equal(joints[0, 0], [4, 4])
    # A margin of 1 px (half-width 5) admits (3, 12), 4.5 px off on each axis.
    joints, _ = cascade.locations(self._outputs(), 8, 'cell', cell_margin=1.0)
    np.testing.assert_array_equal(joints[0, 0], [3, 12])

  def test_unknown_rule_raises(self):
    with self.assertRaisesRegex(ValueError, "'nearest'.*'threshold'"):
      cascade.locations(self._outputs(), 8, 'nearest')


class SpatialCascadeTest(chex.TestCase):
  """A cascade with the MRF cuts its windows at the marginals' argmax."""

  def _model(self):
    spatial_model = spatial.SpatialModel(
        num_joints=3, edges=((0, 1), (1, 2)), stride=8, kernel_size=(15, 11))
    return cascade.CascadeModel(**NARROW, spatial=spatial_model)

  def test_windows_follow_the_spatial_argmax(self):
    model = self._model()
    torso = jnp.array([[20.0, 30.0], [5.0, 60.0]])
    variables = model.init(jax.random.key(0), jnp.asarray(IMAGES),
                           train=False, torso=torso)
    self.assertEqual(set(variables['params']),
                     {'coarse', 'fine', 'spatial'})
    outputs = jax.jit(functools.partial(model.apply, train=False))(
        variables, jnp.asarray(IMAGES), torso=torso)
    chex.assert_shape(outputs.spatial_heatmaps, (2, 8, 6, 3))
    expected = spatial.SpatialModel(
        num_joints=3, edges=((0, 1), (1, 2)), stride=8,
        kernel_size=(15, 11)).apply(
            {'params': variables['params']['spatial']},
            outputs.coarse_heatmaps, torso)
    chex.assert_trees_all_close(outputs.spatial_heatmaps, expected,
                                atol=1e-5)
    spatial_argmax, _ = heatmaps.decode(outputs.spatial_heatmaps, 8)
    np.testing.assert_array_equal(outputs.crop_centres, spatial_argmax)
    # The uniform initial kernels do not reproduce the coarse argmax.
    coarse_argmax, _ = heatmaps.decode(outputs.coarse_heatmaps, 8)
    self.assertFalse(np.array_equal(spatial_argmax, coarse_argmax))

  def test_torso_is_required_with_and_refused_without_a_spatial_model(self):
    with self.assertRaisesRegex(ValueError, 'pass the torso'):
      self._model().init(jax.random.key(0), jnp.asarray(IMAGES), train=False)
    with self.assertRaisesRegex(ValueError, 'without a spatial model'):
      cascade.CascadeModel(**NARROW).init(
          jax.random.key(0), jnp.asarray(IMAGES), train=False,
          torso=jnp.zeros((2, 2)))


class StandardCascadeTest(chex.TestCase):

  def test_output_shapes_and_one_extra_conv_per_bank(self):
    model = standard_cascade.StandardCascadeFineModel(
        num_joints=3, extra_width=7, bank_widths=(4, 5), hidden_width=6,
        context=24)
    origins = jnp.asarray(np.array([[[0, 0], [36, 52], [8, 18]]], np.int32))
    images = jnp.asarray(IMAGES[:1])
    variables = jax.eval_shape(model.init, jax.random.key(0), images, origins)
    siamese = variables['params']['fine']['siamese']
    self.assertEqual(
        {name: v['kernel'].shape for name, v in siamese.items()
         if name.startswith('bank0')},
        {'bank0_conv0': (7, 7, 3, 4), 'bank0_conv1': (7, 7, 4, 7),
         'bank0_conv2': (7, 7, 7, 5)})
    self.assertNotIn('bank3_conv0', siamese)  # 3 pyramid levels.
    fine_heatmaps = jax.eval_shape(model.apply, variables, images, origins)
    chex.assert_shape(fine_heatmaps, (1, 24, 24, 3))

  def test_heatmap_input_as_ours(self):
    model = standard_cascade.StandardCascadeModel(
        **NARROW, extra_width=7, fine_heatmap_input=True)
    params, before, after, coarse_grads = _raise_joint_1(model, 0.5)
    # The hint is one more bank, with the extra conv as the image banks.
    self.assertEqual(
        {name: v['kernel'].shape
         for name, v in params['fine']['fine']['siamese'].items()
         if name.startswith('hint')},
        {'hint_conv0': (7, 7, 1, 4), 'hint_conv1': (7, 7, 4, 7),
         'hint_conv2': (7, 7, 7, 5)})
    # Only joint 1's own input changes, and no gradient reaches the coarse
    # heat-maps through it.
    np.testing.assert_array_equal(before[..., [0, 2]], after[..., [0, 2]])
    self.assertGreater(float(jnp.max(jnp.abs(before[..., 1]
                                             - after[..., 1]))), 1e-4)
    for leaf in jax.tree.leaves(coarse_grads):
      np.testing.assert_array_equal(leaf, 0.0)

  def test_other_joints_input_as_ours(self):
    model = standard_cascade.StandardCascadeModel(
        **NARROW, extra_width=7, fine_heatmap_input=True,
        fine_other_joints_input=True)
    params, before, after, _ = _raise_joint_1(model, 5.0)
    chex.assert_shape(
        params['fine']['fine']['siamese']['hint_conv0']['kernel'],
        (7, 7, 2, NARROW['fine_bank_widths'][0]))
    for joint in range(3):  # Joints 0 and 2 see joint 1 among the others.
      self.assertGreater(float(jnp.max(jnp.abs(before[..., joint]
                                               - after[..., joint]))), 1e-4)
    with self.assertRaisesRegex(ValueError, 'set fine_heatmap_input'):
      standard_cascade.StandardCascadeModel(
          **NARROW, extra_width=7, fine_other_joints_input=True).init(
              jax.random.key(0), jnp.asarray(IMAGES), train=False)

  def test_parameter_counts_match_ours(self):
    configs = {
        'paper_flic': dict(num_joints=11, coarse_widths=(128, 128)),
        'paper_mpii': dict(num_joints=16, coarse_widths=(128, 128)),
        'cpu': dict(num_joints=11, coarse_widths=(16, 16),
                    bank_widths=(16, 16), hidden_width=32),
    }
    for (name, config), hint_channels in itertools.product(configs.items(),
                                                           (0, 1, 2)):
      with self.subTest(name, hint_channels=hint_channels):
        counts = standard_cascade.parameter_counts(
            **config, hint_channels=hint_channels)
        self.assertLess(
            abs(counts['standard_cascade'] - counts['ours']) / counts['ours'],
            0.01)
    # Hand count for the paper widths, 11 joints: 4 banks of 128, 256, 256
    # and 128 input channels, conv7x7 -> 64, conv7x7 64 -> 64; 1x1 64 -> 128;
    # 11 x (128 + 1) unshared.
    paper = standard_cascade.parameter_counts(**configs['paper_flic'])
    self.assertEqual(paper['ours'],
                     49 * 64 * 768 + 4 * 64 + 4 * (49 * 64 * 64 + 64)
                     + 64 * 128 + 128 + 11 * 129)
    # With both heat-map channels, one more bank of 2 input channels.
    hinted = standard_cascade.parameter_counts(**configs['paper_flic'],
                                               hint_channels=2)
    self.assertEqual(hinted['ours'] - paper['ours'],
                     49 * 2 * 64 + 64 + 49 * 64 * 64 + 64)
