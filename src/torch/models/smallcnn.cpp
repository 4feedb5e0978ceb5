// Our small CNN for quick runs on small images, and the same network in Python.
#include "torch/models/modelfamilies.h"

namespace ifs {

QString smallCnnPythonSource()
{
    return QStringLiteral(
        "import torch.nn as nn\n"
        "\n"
        "\n"
        "class SmallCNN(nn.Module):\n"
        "    \"\"\"ImageFolder Studio's small CNN (arch 'small_cnn'), key for key.\"\"\"\n"
        "\n"
        "    def __init__(self, num_classes=10):\n"
        "        super().__init__()\n"
        "        self.features = nn.Sequential(\n"
        "            nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), "
        "nn.ReLU(inplace=True),\n"
        "            nn.MaxPool2d(2),\n"
        "            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), "
        "nn.ReLU(inplace=True),\n"
        "            nn.MaxPool2d(2),\n"
        "            nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), "
        "nn.ReLU(inplace=True),\n"
        "            nn.AdaptiveAvgPool2d(4), nn.Flatten(),\n"
        "        )\n"
        "        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(128 * 4 * 4, "
        "num_classes))\n"
        "\n"
        "    def forward(self, x):\n"
        "        return self.classifier(self.features(x))\n");
}

namespace tm {

namespace {

namespace nn = torch::nn;

/// Our small CNN for quick runs on small images (Fashion-MNIST, CIFAR). smallCnnPythonSource()
/// is the same network in Python; PyTorch's default initialisation on both sides.
struct SmallCnn : Net
{
    nn::Sequential features{nullptr};
    nn::Sequential classifier{nullptr};

    explicit SmallCnn(int64_t numClasses)
    {
        features = register_module(
            "features",
            nn::Sequential(conv(3, 32, 3, 1, 1), nn::BatchNorm2d(32), nn::ReLU(true),
                           nn::MaxPool2d(2), // 0-3
                           conv(32, 64, 3, 1, 1), nn::BatchNorm2d(64), nn::ReLU(true),
                           nn::MaxPool2d(2), // 4-7
                           conv(64, 128, 3, 1, 1), nn::BatchNorm2d(128), nn::ReLU(true), // 8-10
                           nn::AdaptiveAvgPool2d(4), nn::Flatten())); // 11-12
        classifier = register_module(
            "classifier", nn::Sequential(nn::Dropout(0.2), nn::Linear(128 * 4 * 4, numClasses)));
    }

    /// features[0..10]: up to the last conv block's ReLU, before AdaptiveAvgPool2d(4).
    torch::Tensor camForward(torch::Tensor x) override { return runFeatures(std::move(x), 0, 11); }
    /// features[11..12]: AdaptiveAvgPool2d(4), Flatten.
    torch::Tensor poolForward(torch::Tensor x) override
    {
        return runFeatures(std::move(x), 11, features->size());
    }
    torch::Tensor runFeatures(torch::Tensor x, size_t begin, size_t end)
    {
        auto module = features->begin();
        for (size_t i = begin; i < end; ++i)
            x = module[std::ptrdiff_t(i)].forward(x);
        return x;
    }
    torch::Tensor headForward(torch::Tensor x) override { return classifier->forward(x); }
};

} // namespace

const QList<ModelDefinition> &smallCnnModels()
{
    static const QList<ModelDefinition> models = {
        {{.name = QStringLiteral("small_cnn"),
          .title = QStringLiteral("Small CNN"),
          .description = QStringLiteral("3 conv layers, 114k parameters: minutes on a CPU for "
                                        "28–64 px images (Fashion-MNIST, CIFAR)"),
          .headPrefix = QStringLiteral("classifier.1."),
          .pythonConstructor = QStringLiteral("SmallCNN(num_classes={N})"),
          .parameters10 = 113'962,
          .outputStride = 4,
          .pythonDefinition = smallCnnPythonSource()},
         [](int64_t numClasses) -> std::shared_ptr<Net> {
             return std::make_shared<SmallCnn>(numClasses);
         }},
    };
    return models;
}

} // namespace tm
} // namespace ifs
