// Grad-CAM on a loaded Classifier (libtorch). See training/gradcam.h.

#include "training/gradcam.h"

#include "torch/classifierimpl.h"
#include "torch/torchmodels.h"
#include "transforms/torchrng.h"

#include <QFileInfo>

namespace ifs {

namespace {

/// The last image of a traced run before ToTensor: what the model's input tensor shows.
QImage imageBeforeTensor(const QImage &decoded, const TransformRun &run)
{
    QImage shown = decoded;
    for (const StepTrace &step : run.steps)
        if (!step.output.isTensor() && !step.output.image.isNull())
            shown = step.output.image;
    return shown.convertToFormat(QImage::Format_RGB888);
}

/// ReLU(Σ_k w_k·A_k) with w_k the spatial mean of ∂logit/∂A_k, upsampled to `size` and divided
/// by its maximum: H×W on the CPU.
torch::Tensor camFromMaps(const torch::Tensor &maps, const torch::Tensor &gradients,
                          const std::vector<int64_t> &size)
{
    const torch::Tensor weights = gradients.mean({2, 3}, /*keepdim=*/true);
    torch::Tensor cam = torch::relu((weights * maps).sum(1, /*keepdim=*/true));
    namespace F = torch::nn::functional;
    cam = F::interpolate(
        cam, F::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false));
    cam = cam[0][0].to(torch::kCPU, torch::kFloat).contiguous();
    const float maximum = cam.max().item<float>();
    return maximum > 0.f ? cam / maximum : torch::zeros_like(cam);
}

} // namespace

Result<GradCamResult> computeGradCam(Classifier &classifier, const QString &imagePath,
                                     const GradCamOptions &options)
{
    auto &d = ClassifierInternals::of(classifier);
    const QString name = QFileInfo(imagePath).fileName();
    if (options.classIndex >= int(d.classes.size()) || options.classIndex < -1)
        return Error{QStringLiteral("Grad-CAM of “%1”: there is no class %2 (the model has %3)")
                         .arg(name)
                         .arg(options.classIndex)
                         .arg(d.classes.size())};
    auto decoded = loadTransformInput(imagePath);
    if (!decoded)
        return decoded.error();
    TorchGenerator rng(0);
    auto run = d.val.run(decoded.value(), rng, /*trace=*/true);
    if (!run)
        return Error{QStringLiteral("Grad-CAM of “%1”: %2").arg(name, run.errorMessage())};
    if (!run->output.isTensor())
        return Error{QStringLiteral("Grad-CAM of “%1”: the val transforms do not end in a tensor "
                                    "(add ToTensor)")
                         .arg(name)};
    GradCamResult result;
    result.inputTensor = run->output.tensor;
    const ImageTensor &t = result.inputTensor;
    result.size = QSize(t.width, t.height);
    result.input = imageBeforeTensor(decoded.value(), run.value());
    if (result.input.size() != result.size)
        result.input = QImage();
    try {
        // Float32 in eval mode, with gradients, whatever the caller's mode and AMP setting.
        torch::AutoGradMode enableGrad(true);
        d.net->eval();
        const torch::Tensor x = torch::from_blob(const_cast<float *>(t.data.data()),
                                                 {1, t.channels, t.height, t.width}, torch::kFloat)
                                    .contiguous(torch::MemoryFormat::ChannelsLast)
                                    .to(d.device);
        const torch::Tensor maps = d.net->camForward(x);
        const torch::Tensor logits = d.net->headForward(d.net->poolForward(maps));
        const torch::Tensor probs
            = torch::softmax(logits.detach().to(torch::kCPU).to(torch::kFloat), 1)[0];
        result.predicted = int(probs.argmax().item<int64_t>());
        result.predictedProbability = probs[result.predicted].item<float>();
        result.classIndex = options.classIndex >= 0 ? options.classIndex : result.predicted;
        result.probability = probs[result.classIndex].item<float>();
        const torch::Tensor gradients
            = torch::autograd::grad({logits[0][result.classIndex]}, {maps})[0];
        result.featureSize = QSize(int(maps.size(3)), int(maps.size(2)));
        const torch::Tensor cam = camFromMaps(maps.detach(), gradients, {t.height, t.width});
        result.heatmap.assign(cam.data_ptr<float>(), cam.data_ptr<float>() + cam.numel());
    } catch (const c10::Error &e) {
        return Error{
            QStringLiteral("Grad-CAM of “%1” failed: %2")
                .arg(name,
                     QString::fromStdString(e.what_without_backtrace()).section(u'\n', 0, 0))};
    }
    return result;
}

} // namespace ifs
