#pragma once

#include "base/result.h"

#include <QString>
#include <QStringList>

#include <atomic>
#include <cstdint>
#include <functional>

namespace ifs {

/// Where Debian's dataset-fashion-mnist package puts the IDX files.
QString defaultFashionMnistSource();

/// The IDX files an export needs, without the optional ".gz": "train-images-idx3-ubyte",
/// "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte".
QStringList fashionMnistFileNames();

/// The names of fashionMnistFileNames() that `source` holds neither plain nor gzipped (all four
/// when the folder does not exist). Empty when everything is there.
QStringList missingFashionMnistFiles(const QString &source);

struct SampleDataOptions
{
    QString source; ///< folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz];
                    ///< empty = defaultFashionMnistSource()
    int limitPerClass = 0; ///< 0 = everything; >0 keeps the first N of each class per split
    int threads = 0; ///< PNG encoder threads; 0 = QThread::idealThreadCount()
};

struct SampleDataResult
{
    QString root; ///< DEST, absolute (holds train/ and val/)
    QString source; ///< the IDX folder used, absolute
    bool alreadyThere = false; ///< a complete earlier export was found and kept; nothing written
    bool cancelled = false; ///< cancelled: nothing was left behind, DEST is as before
    int64_t imagesWritten = 0; ///< PNGs written by this call
    int64_t trainImages = 0; ///< images in DEST/train (also when alreadyThere)
    int64_t valImages = 0; ///< images in DEST/val (also when alreadyThere)
};

/// Exports Fashion-MNIST as an ImageFolder tree DEST/train/<class>/<n>.png (from the 60k train
/// set) and DEST/val/<class>/<n>.png (from the 10k t10k set). Class folders are named after the
/// official labels, made file-system safe ("T-shirt_top", ...); <n> is the image's index in its
/// IDX file, zero-padded to 5 digits so that string order equals numeric order. The PNGs are 8-bit
/// grayscale with exactly the IDX pixels.
///
/// Validates the IDX files fully before creating anything. Writes into a hidden temporary folder
/// inside DEST and renames train/ and val/ into place, then writes the marker
/// DEST/.ifstudio-sample.json; a failed or cancelled export removes its temporary folder and
/// leaves DEST as it was. A complete earlier export with the same options is kept (alreadyThere).
/// Refuses to touch a DEST/train or DEST/val it did not write, or one written with other options.
///
/// Blocks: run it on a worker. `progress(done, total)` is called from worker threads (throttle on
/// the receiver); `cancel` is polled between images.
Result<SampleDataResult>
exportFashionMnist(const QString &dest, const SampleDataOptions &options = {},
                   const std::function<void(int64_t done, int64_t total)> &progress = {},
                   const std::atomic_bool *cancel = nullptr);

/// The official Fashion-MNIST label names in label order ("T-shirt/top", ..., "Ankle boot").
QStringList fashionMnistLabels();
/// The class folder names in label order ("T-shirt_top", ..., "Ankle_boot"). ImageFolder sorts
/// them, so its class indices differ from the IDX labels.
QStringList fashionMnistFolderNames();

/// The marker file an export writes into DEST.
inline constexpr char16_t kSampleDataMarker[] = u".ifstudio-sample.json";

} // namespace ifs
