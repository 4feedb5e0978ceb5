#pragma once

// The two files of a duplicate or near-duplicate finding side by side, under the health check's
// table, so that the user sees whether they are the same picture before quarantining one.

#include <QString>
#include <QWidget>

class QLabel;

namespace ifs {

class ThumbnailLoader;

class DuplicatePairView : public QWidget
{
    Q_OBJECT

public:
    explicit DuplicatePairView(QWidget *parent = nullptr);
    ~DuplicatePairView() override;

    /// Shows `path` (captioned `caption`) beside `otherPath` (`otherCaption`); the images are
    /// decoded off the GUI thread and appear when ready.
    void showPair(const QString &path, const QString &caption, const QString &otherPath,
                  const QString &otherCaption);
    void clear();
    /// The paths shown, left then right (empty when cleared).
    QStringList paths() const { return {m_paths[0], m_paths[1]}; }
    /// Whether both images are decoded and shown.
    bool isComplete() const { return m_shown[0] && m_shown[1]; }

Q_SIGNALS:
    /// Both images are shown (for tests and screenshots).
    void pairShown();

private:
    void place(const QString &path, const QImage &image, const QString &error);

    ThumbnailLoader *m_loader = nullptr;
    QLabel *m_images[2] = {nullptr, nullptr};
    QLabel *m_captions[2] = {nullptr, nullptr};
    QString m_paths[2];
    bool m_shown[2] = {false, false};
};

} // namespace ifs
