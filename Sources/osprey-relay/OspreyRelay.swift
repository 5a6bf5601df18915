import Relay

@main
enum OspreyRelay {
    static func main() async {
        await RelayCommand.main()
    }
}
