"""Blocks: small PyTorch modules named after the papers' parts (Hourglass, ExchangeUnit, ResNet, ...).

Every backbone (:class:`ResNet` here, :class:`posebook.models.hrnet.HRNet`) offers one multi-scale feature API:
``features(x) -> {stride: map}`` (``{4: C2, 8: C3, 16: C4, 32: C5}`` for ResNet, stage 4's branches for HRNet) and
``feature_channels`` ``{stride: channels}``; heads (SimpleBaseline's deconvolutions, CPN's GlobalNet, MSPN's
upsampling units) attach to them by stride. Chapter 07.
"""
from posebook.blocks.cpn import GlobalNet, NonLocalBlock, RefineNet
from posebook.blocks.hourglass import Hourglass, IntermediateSupervision
from posebook.blocks.hrnet import ExchangeUnit, HighResolutionModule, Transition
from posebook.blocks.mspn import CrossStageFeatureAggregation, DownsamplingUnit, SingleStageModule, UpsamplingUnit
from posebook.blocks.openpose import Concat3x3Block, ResNetFront, SingleBranchStage, TwoBranchStage, VGG19Front
from posebook.blocks.residual import Residual
from posebook.blocks.resnet import BasicBlock, Bottleneck, ResNet

__all__ = ["BasicBlock", "Bottleneck", "Concat3x3Block", "CrossStageFeatureAggregation", "DownsamplingUnit",
           "ExchangeUnit", "GlobalNet", "HighResolutionModule", "Hourglass", "IntermediateSupervision", "NonLocalBlock",
           "RefineNet", "Residual", "ResNet", "ResNetFront", "SingleBranchStage", "SingleStageModule", "Transition", "TwoBranchStage",
           "UpsamplingUnit", "VGG19Front"]
