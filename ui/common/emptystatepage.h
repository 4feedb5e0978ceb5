#pragma once

#include <QWidget>

class QLabel;
class QPushButton;
class QVBoxLayout;

namespace ifs {

/// The centred page a workspace shows before a dataset is open: a large icon, a title, a hint,
/// "Open Folder…" and "Open Sample Dataset" buttons, and room for more below them.
class EmptyStatePage : public QWidget
{
    Q_OBJECT

public:
    EmptyStatePage(const QString &iconName, const QString &title, const QString &hint,
                   QWidget *parent = nullptr);

    QPushButton *openButton() const { return m_open; }
    QPushButton *sampleButton() const { return m_sample; }
    /// Adds a widget under the buttons, centred (e.g. a list of recent datasets).
    void addBelow(QWidget *widget, int spacing = 16);

Q_SIGNALS:
    void openFolderRequested();
    void openSampleRequested();

private:
    QVBoxLayout *m_column;
    QPushButton *m_open;
    QPushButton *m_sample;
};

} // namespace ifs
