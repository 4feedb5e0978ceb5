#pragma once

// Grad-CAM (Selvaraju et al., 2017) for the classifiers the app trains: which parts of an image
// made the model give a class. Torch-free header: the GUI and the CLI use it without libtorch;
// src/torch/gradcam.cpp computes it on a Classifier.

#include "base/result.h"
#include "transforms/transforms.h"

#include <QImage>
#include <QSize>
#include <QString>

#include <vector>

namespace ifs {

class Classifier;

struct GradCamOptions
{
    /// The class whose logit is explained; -1: the predicted class.
    int classIndex = -1;
};

/// Grad-CAM of one image.
struct GradCamResult
{
    /// The image as the model saw it (the val transforms up to ToTensor, RGB888), the heatmap's
    /// size. Null when the transforms begin with ToTensor on the decoded image.
    QImage input;
    /// The model's input tensor (C×H×W, after Normalize): what the heatmap was computed on.
    ImageTensor inputTensor;
    /// H×W values in 0..1, row-major, at the model input's size (size.width() × size.height()):
    /// ReLU(Σ_k w_k·A_k) upsampled bilinearly, divided by its maximum (all 0 when that is 0).
    std::vector<float> heatmap;
    QSize size;
    /// The feature maps' spatial size (the last convolutional stage's h × w).
    QSize featureSize;
    int classIndex = -1; ///< the class explained
    float probability = 0.f; ///< its softmax probability
    int predicted = -1; ///< the most likely class
    float predictedProbability = 0.f;
};

/// Grad-CAM of `classifier` on the image at `imagePath` (decoded as the val transforms read it):
/// the last convolutional stage's maps A (Net::camForward), the gradient of the chosen logit
/// with respect to them, weights w_k = the spatial mean of that gradient, ReLU(Σ_k w_k·A_k),
/// upsampled bilinearly (align_corners=False) to the input's size and divided by its maximum,
/// as pytorch-grad-cam computes it. In eval mode and float32, whatever the classifier's AMP
/// setting. Fails with the image named when it cannot be read or transformed, or when the
/// class index is out of range.
Result<GradCamResult> computeGradCam(Classifier &classifier, const QString &imagePath,
                                     const GradCamOptions &options = {});

/// A jet-like colour for t in 0..1 (matplotlib's "jet": blue, cyan, yellow, red).
QRgb gradCamColor(float t);

/// `image` with `heatmap` (values 0..1, `heatmapSize`, row-major) drawn over it in gradCamColor()
/// at `opacity` (0: the image, 1: the heatmap): result = (1 − opacity)·image + opacity·colour.
/// The heatmap is scaled (bilinear) to the image's size when they differ. An RGB32 image.
QImage gradCamOverlay(const QImage &image, const std::vector<float> &heatmap, QSize heatmapSize,
                      double opacity = 0.5);

/// The overlay of a result: on its input image, or on the heatmap's colours alone when it has
/// none.
QImage gradCamOverlay(const GradCamResult &result, double opacity = 0.5);

/// Writes `image` as a PNG at `path`, whole or not at all (writeFileAtomically).
Status writePngAtomically(const QImage &image, const QString &path);

} // namespace ifs
